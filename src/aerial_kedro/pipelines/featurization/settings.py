"""The featurization parameters as one typed value: :class:`FeaturizationSettings`.

``params:featurizer`` and the ``featurization`` block become a frozen pydantic model; a failure
is one :class:`~aerial_kedro.errors.ParameterError` line naming the key::

    featurizer: 'resnet' is not allowed; allowed values: efficientnet_lite0, ...
    featurization.options.precision: 'fp8' is not allowed; allowed: fp32, int8
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from aerial_kedro.featurizers.registry import FEATURIZERS
from aerial_kedro.parameters import Count, choice, validated

# ort: onnxruntime in the Python workers (default). synapseml: SynapseML's ONNXModel in the JVM.
BACKENDS = ("ort", "synapseml")



class FeaturizationBlock(BaseModel):
    """The validated ``featurization`` block alone (what featurizing tiles reads); build with
    :meth:`from_params`.

    ``options`` stays the mapping given (the EfficientNet-Lite builder reads it; it is checked
    here with :func:`~aerial_kedro.featurizers.options.parse_options`), ``onnx_file``
    the bring-your-own model's mapping.
    """

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    backend: choice(BACKENDS) = "ort"  # type: ignore[valid-type]
    batch_size: Count = 64
    threads_per_task: Count | None = None
    partitions_per_core: Count = 4
    options: dict[str, Any] | None = None
    onnx_file: dict[str, Any] | None = None

    @classmethod
    def from_params(cls, featurization: Mapping[str, Any] | None) -> FeaturizationBlock:
        """The block from ``params:featurization``; raises ParameterError naming the first bad key."""
        return validated(cls, dict(featurization or {}), _key)

    @field_validator("options", mode="after")
    @classmethod
    def _valid_options(cls, options: dict[str, Any] | None) -> dict[str, Any] | None:
        from aerial_kedro.featurizers.options import parse_options

        parse_options(options)  # its ValueError already names featurization.options.<key>
        return options


class FeaturizationSettings(FeaturizationBlock):
    """The block with the featurizer it configures (what exporting the featurizer reads)."""

    featurizer: choice(FEATURIZERS)  # type: ignore[valid-type]

    @classmethod
    def from_params(  # type: ignore[override]
        cls, featurizer: Any, featurization: Mapping[str, Any] | None
    ) -> FeaturizationSettings:
        """Settings from ``params:featurizer`` and ``params:featurization``.

        Raises ParameterError, one line naming the first bad key (``featurization.<key>`` or
        ``featurizer``).
        """
        return validated(cls, {**(featurization or {}), "featurizer": featurizer}, _key)

    @model_validator(mode="after")
    def _onnx_file_has_a_path(self) -> FeaturizationSettings:
        if self.featurizer == "onnx_file" and not (self.onnx_file or {}).get("path"):
            raise ValueError(
                "featurization.onnx_file.path must name an .onnx file when featurizer=onnx_file"
            )
        return self


def _key(field: str) -> str:
    return field if field == "featurizer" else f"featurization.{field}"
