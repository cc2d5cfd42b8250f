"""A model namespace's ``classifier`` block, typed: :class:`ClassifierSettings`.

Only what every classifier shares is typed here (its ``type``); ``hyperparameters`` go to the
Spark ML estimator as given, which names a bad one itself. A failure is one
:class:`~aerial_kedro.errors.ParameterError` line naming the key::

    random_forest.classifier.type: 'xgboost' is not allowed; allowed values: ...
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from aerial_kedro.parameters import choice, validated
from aerial_kedro.pipelines.modeling.classifiers import CLASSIFIERS


class ClassifierSettings(BaseModel):
    """Validated ``<namespace>.classifier`` block; build with :meth:`from_params`."""

    # The block's other keys are the estimator's own hyperparameters, checked where it is built.
    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    type: choice(tuple(CLASSIFIERS))  # type: ignore[valid-type]

    @classmethod
    def from_params(
        cls, namespace: str, classifier: Mapping[str, Any] | None
    ) -> ClassifierSettings:
        """The ``classifier`` block of model ``namespace``; ParameterError names the bad key."""
        return validated(
            cls, dict(classifier or {}), key=lambda field: f"{namespace}.classifier.{field}"
        )
