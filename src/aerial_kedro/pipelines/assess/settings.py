"""The assess parameters as one typed value: :class:`AssessSettings`.

``params:reference_labels``, ``params:reference_class_field``, ``params:min_cover`` and the
``assess`` block become a frozen pydantic model: each field's type and constraints are its
check, and a failure is reported as before, one :class:`~aerial_kedro.errors.ParameterError`
line naming the key as the user wrote it::

    min_cover: 1.5 is outside (0, 1]
    assess.exclude_training_chips: 'yes' is not true or false

As for the scoring settings (:mod:`aerial_kedro.chips.settings` says why not
Kedro's typed node parameters), the model is built by the assess pipeline's first node and by
:func:`aerial_kedro.validation.validate_run` with :meth:`AssessSettings.from_params`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)

from aerial_kedro.parameters import FieldName, Flag, Fraction, Says, validated

# Scheme values assess takes besides those of aerial_kedro.class_schemes.
SCHEME_CHOICES = ("auto", "none")

# Field name -> the key a user sets; the other fields sit in the `assess` block.
TOP_LEVEL_KEYS = {
    "reference_labels": "reference_labels",
    "class_field": "reference_class_field",
    "min_cover": "min_cover",
    "layer": "reference_layer",
}

LabelsPath = Annotated[
    str,
    Field(min_length=1),
    Says(
        "not set; pass --params=reference_labels=PATH (GeoJSON, GeoPackage, Shapefile or CSV "
        "of lon/lat points, local or URL)"
    ),
]


class AssessSettings(BaseModel):
    """Validated assess settings; build with :meth:`from_params`.

    Field order is check order: the first bad key in this order is the one reported.
    ``class_scheme`` is ``auto``, ``none``, a scheme name or an inline mapping, as given.
    """

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    reference_labels: LabelsPath
    class_field: FieldName
    min_cover: Fraction
    exclude_training_chips: Flag = True
    class_scheme: str | dict[str, Any] = "auto"
    use_sample_design: Flag = True
    layer: Annotated[str, Field(min_length=1)] | None = None

    @classmethod
    def from_params(
        cls,
        reference_labels: Any,
        reference_class_field: Any,
        min_cover: Any,
        assess: Mapping[str, Any] | None,
        reference_layer: Any = None,
    ) -> AssessSettings:
        """Settings from the assess parameters.

        Raises :class:`~aerial_kedro.errors.ParameterError`, one line naming the first bad key
        (``reference_labels``, ``reference_class_field``, ``min_cover`` or ``assess.<field>``).
        """
        raw = {
            **(assess or {}),
            "reference_labels": reference_labels,
            "class_field": reference_class_field,
            "min_cover": min_cover,
            "layer": reference_layer,
        }
        return validated(cls, raw, _key)

    @field_validator("class_scheme", mode="plain")
    @classmethod
    def _known_scheme(cls, scheme: Any) -> str | dict[str, Any]:
        """``auto``, ``none`` or what :func:`~aerial_kedro.class_schemes.resolve_scheme`
        takes; kept as given, resolved when the map's classes are known."""
        if isinstance(scheme, str) and scheme in SCHEME_CHOICES:
            return scheme
        # Imported here, as before: the class schemes are only read for a non-default scheme.
        from aerial_kedro.class_schemes import ClassSchemeError, resolve_scheme

        try:
            resolve_scheme(scheme)
        except ClassSchemeError as error:
            raise ValueError(
                f"{str(error).removeprefix('class_scheme: ')} (or auto, none)"
            ) from None
        return scheme


def _key(field: str) -> str:
    return TOP_LEVEL_KEYS.get(field, f"assess.{field}")
