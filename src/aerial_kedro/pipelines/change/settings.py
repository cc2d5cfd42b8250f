"""The change parameters as one typed value: :class:`ChangeSettings`.

``params:change`` becomes a frozen pydantic model, like the scoring block
(:mod:`aerial_kedro.chips.settings`): each field's type and constraints are its check,
and a failure is reported as before, one :class:`~aerial_kedro.errors.ParameterError` line naming
the key::

    change.threshold: '1.5' is not a number in [0, 1]

A key missing from the block reads as if it were null (the former hand-written check read every
key with ``.get``). The model is built by the change pipeline's first node and by
:func:`aerial_kedro.validation.validate_run` (before Spark starts) with
:meth:`ChangeSettings.from_params`; the pure domain code (:mod:`aerial_kedro.change`) gets plain
values (:meth:`~pydantic.BaseModel.model_dump`), never the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
)
from pydantic_core import PydanticCustomError

from aerial_kedro.change.appearance import AppearanceCriteria
from aerial_kedro.change.scores import METHODS, check_method
from aerial_kedro.errors import ParameterError
from aerial_kedro.parameters import Flag, Says, validated

PREFIX = "change"
# The default score: what the chips look like on both dates (aerial_kedro.change.appearance);
# the map scores (tv, hellinger, gain:<class>) compare the two dates' class probabilities.
APPEARANCE = "appearance"
# Read only with a `reference`: without one they are not checked and hold None.
REFERENCE_KEYS = ("reference_min_fraction", "reference_change_value")


def _mapping_as_dict(value: Any) -> Any:
    # Strict dicts refuse other mappings, which callers in Python may pass for `groups`.
    return dict(value) if isinstance(value, Mapping) and not isinstance(value, dict) else value


Source = Annotated[str, Field(min_length=1), Says("not set; pass --params={key}=PATH")]
Fraction = Annotated[float, Field(ge=0, le=1), Says("'{value}' is not a number in [0, 1]")]
Integer = Annotated[int, Says("'{value}' is not an integer")]
Number = Annotated[float, Says("'{value}' is not a number")]


def _odd(value: int) -> int:
    # A cell window is centred on its cell: 1 (none), 3, 5 ...
    if value % 2 == 0:
        raise ValueError(f"'{value}' is not an odd integer >= 1 (the window is centred on a cell)")
    return value


def _not_one(value: int) -> int:
    # One neighbour has no spread: the colour neighbourhood needs 2 or more (0 = none).
    if value == 1:
        raise ValueError(f"'{value}' is not 0 or an integer >= 2 (1 neighbour has no spread)")
    return value


_DEFAULT = AppearanceCriteria()


class AppearanceSettings(BaseModel):
    """``change.appearance``: how the chips' look is compared (see change/appearance.py)."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    colour_quantile: Annotated[
        float, Field(gt=0, le=1), Says("'{value}' is not a number in (0, 1]")
    ] = _DEFAULT.colour_quantile
    texture_weight: Annotated[float, Field(ge=0), Says("'{value}' is not a number >= 0")] = (
        _DEFAULT.texture_weight
    )
    threshold_z: Number = _DEFAULT.threshold_z
    neighbours: Annotated[
        int, Field(ge=0), AfterValidator(_not_one), Says("'{value}' is not 0 or an integer >= 2")
    ] = _DEFAULT.neighbours
    reference_chips: Annotated[int, Field(ge=2), Says("'{value}' is not an integer >= 2")] = (
        _DEFAULT.reference_chips
    )
    context_weight: Annotated[float, Field(ge=0), Says("'{value}' is not a number >= 0")] = (
        _DEFAULT.context_weight
    )
    cell_window: Annotated[
        int, Field(ge=1), AfterValidator(_odd), Says("'{value}' is not an odd integer >= 1")
    ] = _DEFAULT.cell_window
    cloudy_cell: Annotated[
        float, Field(gt=0, le=1), Says("'{value}' is not a number in (0, 1]")
    ] = _DEFAULT.cloudy_cell
    cloud_buffer: Annotated[int, Field(ge=0), Says("'{value}' is not an integer >= 0")] = (
        _DEFAULT.cloud_buffer
    )
    chip_baseline: Annotated[
        float, Field(ge=0, le=1), Says("'{value}' is not a number in [0, 1]")
    ] = _DEFAULT.chip_baseline

    def criteria(self) -> AppearanceCriteria:
        return AppearanceCriteria(
            self.colour_quantile,
            self.texture_weight,
            self.threshold_z,
            self.neighbours,
            self.reference_chips,
            self.context_weight,
            self.cell_window,
            self.cloudy_cell,
            self.cloud_buffer,
            self.chip_baseline,
        )


Groups = Annotated[
    dict[str, Annotated[str, Field(min_length=1)]],
    BeforeValidator(_mapping_as_dict),
    Says("not a mapping {{model class: coarse class}}"),
]


class ChangeSettings(BaseModel):
    """Validated change settings; build with :meth:`from_params`.

    Field order is check order: the first bad key in this order is the one reported. ``groups``
    is ``None`` for the default grouping, ``{}`` to compare the model's own classes.
    ``reference_min_fraction`` and ``reference_change_value`` are ``None`` without a
    ``reference`` (they are read only with one). Other keys of the block (the dates'
    ``radiometry_reference``, read by the scoring pipelines) are ignored.
    """

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    before: Source
    after: Source
    threshold: Fraction
    confidence_floor: Fraction
    max_cloud_fraction: Fraction
    cloud_neighbours: Annotated[int, Field(ge=0), Says("'{value}' is not an integer >= 0")] = 0
    cloudy_date_share: Fraction = 1.0
    cloudy_date_cloud_fraction: Fraction = 0.2
    score: str = Field(default=None, validate_default=True)
    appearance: AppearanceSettings = Field(default=None, validate_default=True)
    require_class_change: Flag
    groups: Groups | None = None
    reference: str | None = None
    reference_min_fraction: Fraction | None = Field(default=None, validate_default=True)
    reference_change_value: Integer | None = Field(default=None, validate_default=True)

    @classmethod
    def from_params(cls, change: Mapping[str, Any] | None) -> ChangeSettings:
        """Settings from ``params:change``.

        Raises :class:`~aerial_kedro.errors.ParameterError`, one line naming the first bad key
        (``change.<field>``).
        """
        # radiometry_reference is each date's scoring.radiometry_reference, read and checked by
        # the date pipelines, not by the change nodes.
        raw = {k: v for k, v in (change or {}).items() if k != "radiometry_reference"}
        return validated(cls, raw, key=lambda field: f"{PREFIX}.{field}")

    @field_validator("score", mode="plain")
    @classmethod
    def _known_score(cls, score: Any) -> str:
        """``appearance``, ``tv``, ``hellinger`` or ``gain:<group>``; the group is checked
        against the model's classes when comparing, as only then are they known."""
        if score == APPEARANCE:
            return APPEARANCE
        try:
            return check_method(str(score))
        except ValueError:
            raise ValueError(
                f"'{score}' is not allowed; allowed: {APPEARANCE} (the default), "
                f"{', '.join(METHODS)}, gain:<class>"
            ) from None

    @field_validator("appearance", mode="before")
    @classmethod
    def _appearance_block(cls, block: Any) -> AppearanceSettings:
        """The nested block, its keys named in full (``change.appearance.threshold_z: ...``)."""
        if isinstance(block, AppearanceSettings):
            return block
        if block is None:
            block = {}
        if not isinstance(block, Mapping):
            raise ValueError(f"'{block}' is not a mapping")
        try:
            return validated(
                AppearanceSettings, dict(block), key=lambda f: f"{PREFIX}.appearance.{f}"
            )
        except ParameterError as error:
            raise ValueError(str(error)) from None

    @property
    def map_score(self) -> str:
        """The class-probability score of the chip table's ``map_score`` column."""
        return "tv" if self.score == APPEARANCE else self.score

    @field_validator("reference", mode="plain")
    @classmethod
    def _reference_is_file(cls, reference: Any) -> str | None:
        """A local reference must be a file; a URL is read (and checked) when assessing."""
        if reference is None:
            return None
        if not isinstance(reference, str) or (
            "://" not in reference and not Path(reference).is_file()
        ):
            raise ValueError(f"'{reference}' is not a file")
        return reference

    @field_validator(*REFERENCE_KEYS, mode="wrap")
    @classmethod
    def _only_with_reference(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        """Checked only with a ``reference`` (then null is as wrong as any other non-number);
        without one, or when the reference itself failed, ``None``."""
        if info.data.get("reference") is None:
            return None
        if value is None:
            # Not a value_error: reads as the field's `Says`, like any other wrong type.
            raise PydanticCustomError("required_with_reference", "required with change.reference")
        return handler(value)

    @field_validator("reference_min_fraction")
    @classmethod
    def _above_zero(cls, fraction: float | None) -> float | None:
        """0 would make every chip with one changed pixel a reference change."""
        if fraction is not None and fraction <= 0:
            raise ValueError("must be > 0")
        return fraction


def require_chips_for_appearance(change: ChangeSettings, scoring: Mapping[str, Any]) -> None:
    """The appearance score compares chips side by side: overlapping windows are one line."""
    stride = (scoring or {}).get("chip_stride_px")
    if change.score == APPEARANCE and stride not in (None, (scoring or {}).get("chip_px")):
        raise ParameterError(
            f"change.score: appearance compares chips side by side, not the overlapping windows "
            f"of scoring.chip_stride_px={stride}; pass --params=change.score=tv"
        )
