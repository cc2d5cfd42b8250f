"""The `sample` parameters as one typed value: :class:`SampleSettings`.

A failure is one :class:`~aerial_kedro.errors.ParameterError` line naming the key as the user
wrote it (``sample.target_se: 0 is outside (0, 1]``), as for the other pipelines' settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aerial_kedro.parameters import Count, Fraction, Says, validated

Accuracy = Annotated[
    float, Field(gt=0, lt=1), Says("'{value}' is not a user's accuracy in (0, 1)")
]
Seed = Annotated[int, Field(ge=0), Says("'{value}' is not an integer >= 0")]
Picks = Annotated[int, Field(ge=0), Says("'{value}' is not an integer >= 0")]


class SampleSettings(BaseModel):
    """Validated `sample` settings; build with :meth:`from_params`."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    target_se: Fraction
    min_per_stratum: Count
    expected_users_accuracy: Accuracy
    users_accuracy: dict[str, Accuracy] = {}
    seed: Seed
    training_candidates: Picks = 20
    candidate_pool: Count = 5000

    @classmethod
    def from_params(cls, sample: Mapping[str, Any] | None) -> SampleSettings:
        return validated(cls, dict(sample or {}), lambda field: f"sample.{field}")

    @field_validator("users_accuracy", mode="before")
    @classmethod
    def _none_as_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    def expected_accuracy(self, classes: list[str]) -> dict[str, float]:
        """Each class's expected user's accuracy: its own entry, else the default."""
        return {name: self.users_accuracy.get(name, self.expected_users_accuracy) for name in classes}
