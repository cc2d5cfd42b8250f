"""The reference-label parameters as one typed value: :class:`ReferenceSettings`.

``params:reference_labels``, ``reference_rasters``, ``reference_class_field``, ``min_cover``
and the ``reference`` block become a frozen pydantic model; a failure is one
:class:`~aerial_kedro.errors.ParameterError` line naming the key as the user wrote it::

    reference_rasters: not set; reference_labels need the rasters they were drawn over
    reference.weight: 'heavy' is not balanced or a positive number
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from aerial_kedro.errors import ParameterError
from aerial_kedro.parameters import (
    Count,
    FieldName,
    Flag,
    Fraction,
    OpenFraction,
    Says,
    validated,
)

# Field name -> the key a user sets; the other fields sit in the `reference` block.
TOP_LEVEL_KEYS = {
    "labels": "reference_labels",
    "rasters": "reference_rasters",
    "class_field": "reference_class_field",
    "min_cover": "min_cover",
    "layer": "reference_layer",
}

Rasters = Annotated[
    str,
    Field(min_length=1),
    Says("not set; reference_labels need the rasters they were drawn over"),
]
Weight = Annotated[
    Literal["balanced"] | Annotated[float, Field(gt=0)],
    Says("'{value}' is not balanced or a positive number"),
]


class ReferenceSettings(BaseModel):
    """Validated reference-label settings; build with :meth:`from_params`.

    With no ``labels`` nothing else is required: training then reads tile folders only.
    """

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    labels: str | None = None
    rasters: Rasters | None = Field(default=None, validate_default=True)
    class_field: FieldName = "class"
    min_cover: Fraction = 0.5
    test_fraction: OpenFraction = 0.3
    block_chips: Count = 4
    augment: Flag = True
    weight: Weight = "balanced"
    class_balance: Flag = True
    layer: Annotated[str, Field(min_length=1)] | None = None

    @classmethod
    def from_params(
        cls,
        reference_labels: Any,
        reference_rasters: Any,
        reference_class_field: Any,
        min_cover: Any,
        reference: Mapping[str, Any] | None,
        reference_layer: Any = None,
    ) -> ReferenceSettings:
        """Settings from the reference parameters; ParameterError names the first bad key."""
        raw = {
            **(reference or {}),
            "labels": reference_labels or None,
            "rasters": reference_rasters or None,
            "class_field": reference_class_field or "class",
            "min_cover": min_cover,
            "layer": reference_layer or None,
        }
        return validated(cls, raw, _key)

    @field_validator("rasters", mode="after")
    @classmethod
    def _rasters_with_labels(cls, rasters: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("labels") and not rasters:
            raise ValueError("not set; reference_labels need the rasters they were drawn over")
        return rasters


def _key(field: str) -> str:
    return TOP_LEVEL_KEYS.get(field, f"reference.{field}")


def check_reference_labels(settings: ReferenceSettings, mapping: Mapping[str, str]) -> set[str]:
    """The labels file opens, has the class field, and every class is in the scheme; returns
    the classes the labels make (the scheme's target classes)."""
    from aerial_kedro.class_schemes import ClassSchemeError, check_labels
    from aerial_kedro.geo.label_files import read_reference_labels

    if not settings.labels:
        return set()
    try:
        labels = read_reference_labels(settings.labels, settings.class_field, layer=settings.layer)
        check_labels(
            labels["label"], dict(mapping), what=f"reference_labels class ({settings.class_field})"
        )
    except ClassSchemeError as error:
        raise ParameterError(f"class_scheme: {error}") from None
    except ValueError as error:
        raise ParameterError(f"reference_labels: {error}") from None
    return {mapping[label] for label in labels["label"]}
