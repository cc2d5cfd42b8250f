"""The scoring parameters as one typed value: :class:`ScoringSettings`.

``params:scoring`` plus the sources read through it (``score_source``, ``radiometry_reference``)
become a frozen pydantic model: each field's type and constraints are its check, and a failure
is reported as today, one :class:`~aerial_kedro.errors.ParameterError` line naming the key::

    scoring.chip_px: 'abc' is not an integer >= 1

Why not Kedro's own typed node parameters (Kedro 1.7, ``kedro.validation.ParameterValidator``):
Kedro converts a ``params:`` input annotated with a model while it builds the catalog, before
any hook, and reports a failure as a multi-line ``ParameterValidationError`` ("Parameter
validation failed:" / "- Parameter 'scoring': Failed to instantiate ScoringSettings ...") that
is neither a ``ParameterError`` nor one line naming ``scoring.<key>``; it also validates one
parameter at a time, so ``score_source`` could not be checked with the block, and it puts model
objects into ``catalog.load("parameters")``, which the run-level checks read as plain values.
So the model is built by the scoring pipeline's first node and by
:func:`aerial_kedro.validation.validate_run` (before Spark starts) with
:meth:`ScoringSettings.from_params`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from aerial_kedro.chips.planning import (
    RADIOMETRY_MATCH_MODES,
    SOURCE_KINDS,
    PlanSettings,
    is_gdal_path,
)
from aerial_kedro.chips.records import ChipReading
from aerial_kedro.errors import ParameterError
from aerial_kedro.geo.band_stack import COLOURS
from aerial_kedro.geo.grid import ChipGrid
from aerial_kedro.geo.radiometry import AUTO, Radiometry, parse_radiometry
from aerial_kedro.parameters import Count, Flag, Says, choice, validated

# Fields given beside the `scoring` block, named without the `scoring.` prefix.
TOP_LEVEL_KEYS = ("score_source", "radiometry_reference")
# The planning defaults' one owner; the fields below that plan take theirs from it.
PLAN = PlanSettings()


def _tuple_as_list(value: Any) -> Any:
    # Strict lists refuse tuples, which callers in Python may pass for `bands`.
    return list(value) if isinstance(value, tuple) else value


def _empty_as_none(value: Any) -> Any:
    return None if value == {} else value


Positive = Annotated[float, Field(gt=0), Says("'{value}' is not a positive number")]
Bands = Annotated[
    list[Annotated[int, Field(ge=1)]],
    BeforeValidator(_tuple_as_list),
    Field(min_length=3, max_length=3),
    Says("'{value}' is not three 1-based band numbers (R, G, B)"),
]
BandFiles = Annotated[
    dict[Literal[COLOURS], Annotated[str, Field(min_length=1)]],  # type: ignore[valid-type]
    Field(min_length=len(COLOURS)),
    Says("'{value}' is not a mapping {{red: path, green: path, blue: path}}"),
]
ModelName = Annotated[
    str, Field(pattern=r"\S"), Says("'{value}' is not a model name (e.g. logistic_regression)")
]
# Kedro's dataset version strings: the UTC time of the `kedro run` that saved the model.
ModelVersion = Annotated[
    str,
    Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}\.\d{2}\.\d{2}\.\d{3}Z$"),
    Says(
        "'{value}' is not a model version (a train run's timestamp, e.g. "
        "2026-11-03T09.12.45.120Z; null = the latest)"
    ),
]


class ScoringSettings(BaseModel):
    """Validated scoring settings; build with :meth:`from_params`.

    Field order is check order: the first bad key in this order is the one reported.
    ``radiometry`` holds ``"auto"`` or the resolved conversion as plain values
    (:meth:`aerial_kedro.geo.radiometry.Radiometry.to_dict`); ``chip_stride_px`` is ``None``
    when chips sit side by side (null or equal to ``chip_px``); ``band_files`` is ``None``
    unless the three colour files are given.
    """

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    score_source: str
    radiometry_reference: str | None = None
    model: ModelName
    # The saved version of `model` to score with (catalog `scoring_model`: load_version); None =
    # the latest. The featurizer files load the version that went with it.
    model_version: ModelVersion | None = None
    source_kind: choice(SOURCE_KINDS) = PLAN.source_kind  # type: ignore[valid-type]
    chip_px: Count
    chunk_size: Count
    batch_size: Count
    tasks_per_slot: Count
    chunks_per_job: Count | None = None
    threads_per_task: Count | None = None
    max_chunks: Count | None = None
    max_chips: Count | None = None
    smoothing: Flag = False
    restart: Flag = False
    allow_vrt: Flag = PLAN.allow_vrt
    chip_stride_px: Count | None = None
    resolution: Positive
    max_empty_fraction: Positive
    bands: Bands
    radiometry: str | dict[str, Any] = AUTO
    band_files: Annotated[BandFiles | None, BeforeValidator(_empty_as_none)] = None
    radiometry_match: choice(RADIOMETRY_MATCH_MODES) = PLAN.radiometry_match  # type: ignore[valid-type]

    @classmethod
    def from_params(
        cls,
        score_source: Any,
        scoring: Mapping[str, Any] | None,
        radiometry_reference: Any = None,
    ) -> ScoringSettings:
        """Settings from ``params:scoring`` and the sources read through it.

        Raises :class:`~aerial_kedro.errors.ParameterError`, one line naming the first bad key
        (``scoring.<field>``, or ``score_source`` / ``radiometry_reference``).
        """
        raw = {
            **(scoring or {}),
            "score_source": score_source,
            "radiometry_reference": radiometry_reference,
        }
        return validated(cls, raw, _key)

    @property
    def plan(self) -> PlanSettings:
        """The planning part, typed (``max_chips`` unset = the planning cap)."""
        radiometry = self.radiometry
        return PlanSettings(
            source_kind=self.source_kind,
            chip_px=self.chip_px,
            chip_stride_px=self.chip_stride_px,
            resolution=self.resolution,
            bands=tuple(self.bands),
            max_empty_fraction=self.max_empty_fraction,
            chunk_size=self.chunk_size,
            radiometry=radiometry
            if isinstance(radiometry, str)
            else Radiometry.from_dict(radiometry),
            band_files=self.band_files,
            allow_vrt=self.allow_vrt,
            max_chips=self.max_chips or PLAN.max_chips,
            radiometry_match=self.radiometry_match,
        )

    def reading(
        self, cpus_per_task: int, radiometry: Radiometry | None, augment: bool = False
    ) -> ChipReading:
        """How the workers read this scoring's items: ``radiometry`` is the plan's resolved
        conversion (``None``: 8-bit sources as they are), ``threads_per_task`` unset = the
        task's cores."""
        return ChipReading(
            batch_size=self.batch_size,
            threads=self.threads_per_task or cpus_per_task,
            max_empty_fraction=self.max_empty_fraction,
            bands=tuple(self.bands),
            radiometry=radiometry,
            augment=augment,
        )

    @property
    def grid(self) -> ChipGrid:
        """The chip grid of this scoring (overlapping windows when ``chip_stride_px`` is set)."""
        return self.plan.grid

    @field_validator("score_source", "radiometry_reference", mode="plain")
    @classmethod
    def _source_exists(cls, source: Any, info: ValidationInfo) -> str | None:
        """A local source must exist; URLs and GDAL paths are listed (and checked) later."""
        key = info.field_name
        if key == "radiometry_reference" and source in (None, ""):
            return None
        if not source or not isinstance(source, str):
            raise ValueError(
                f"not set; pass --params={key}=PATH "
                "(a raster, a folder of rasters or a folder of tiles)"
            )
        if "://" not in source and not is_gdal_path(source) and not Path(source).exists():
            raise ValueError(f"'{source}' does not exist")
        return source

    @field_validator("chip_stride_px")
    @classmethod
    def _stride_divides_chip(cls, stride: int | None, info: ValidationInfo) -> int | None:
        """Null or ``chip_px`` = chips side by side (``None``); a divisor of ``chip_px`` =
        overlapping windows, the map drawn in cells of that many pixels."""
        chip_px = info.data.get("chip_px")
        if stride is None or chip_px is None:
            return stride
        if stride == chip_px:
            return None
        if chip_px % stride:
            raise ValueError(
                f"{stride} does not divide scoring.chip_px {chip_px} "
                f"(e.g. {chip_px // 2} for half a chip)"
            )
        return stride

    @field_validator("max_empty_fraction")
    @classmethod
    def _fraction_at_most_one(cls, fraction: float) -> float:
        if fraction > 1:
            raise ValueError(f"{fraction} is outside (0, 1]")
        return fraction

    @field_validator("radiometry", mode="plain")
    @classmethod
    def _radiometry(cls, value: Any) -> str | dict[str, Any]:
        """``auto`` (resolved per raster when planning) or a declared conversion, as plain
        values; :func:`~aerial_kedro.geo.radiometry.parse_radiometry` says what is wrong."""
        radiometry = parse_radiometry(value)
        return radiometry if isinstance(radiometry, str) else radiometry.to_dict()


def require_side_by_side(scoring: Mapping[str, Any]) -> None:
    """Reference chips and the accuracy assessment need chips that partition the ground:
    ``scoring.chip_stride_px`` null or ``chip_px`` (checked before the rest of the block)."""
    stride = scoring.get("chip_stride_px")
    if stride not in (None, scoring.get("chip_px")):
        raise ParameterError(
            f"scoring.chip_stride_px: {stride} makes chips overlap; reference labels and assess "
            "need chips side by side (null)"
        )


def _key(field: str) -> str:
    return field if field in TOP_LEVEL_KEYS else f"scoring.{field}"
