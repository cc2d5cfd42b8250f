"""``featurization.options``: the EfficientNet-Lite featurizer options, parsed and checked in one place.

:func:`parse_options` turns the parameters mapping into :class:`FeaturizerOptions`; a bad value is
one ValueError naming its key (``featurization.options.precision: 'fp8' is not allowed; ...``).
The typed settings (:mod:`aerial_kedro.pipelines.featurization.settings`) call it to validate
the block, and :func:`~aerial_kedro.featurizers.efficientnet_lite.build_efficientnet_lite` to
read it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aerial_kedro.featurizers.efficientnet_graph import NUM_STAGES

PRECISIONS = ("fp32", "int8")
OPTION_KEYS = ("input_size", "pooled_stages", "std_stages", "precision", "tta", "calibration")
CALIBRATION_KEYS = ("tiles_dir", "seed", "count")
MIN_INPUT_SIZE, MAX_INPUT_SIZE = 32, 1024
DEFAULT_CALIBRATION_TILES = 256


@dataclass(frozen=True)
class CalibrationOptions:
    """Where int8 calibration tiles come from: ``count`` tiles drawn with ``seed`` from a folder."""

    tiles_dir: str | None = None
    seed: int = 42
    count: int = DEFAULT_CALIBRATION_TILES


@dataclass(frozen=True)
class FeaturizerOptions:
    """EfficientNet-Lite featurizer options (``featurization.options``); defaults = plain model.

    ``input_size``: network input in pixels (None = the variant's native size). ``pooled_stages``:
    1-based stages (1..7) whose global-average-pooled outputs follow the 1280-d head in the
    features. ``std_stages``: stages whose per-channel standard deviation over positions follows
    them. ``precision``: ``fp32`` or ``int8`` (static QDQ, calibrated on ``calibration``).
    ``tta``: average the features of each tile and its left-right flip.
    """

    input_size: int | None = None
    pooled_stages: tuple[int, ...] = ()
    std_stages: tuple[int, ...] = ()
    precision: str = "fp32"
    tta: bool = False
    calibration: CalibrationOptions = CalibrationOptions()


def parse_options(
    options: dict[str, Any] | None, key: str = "featurization.options"
) -> FeaturizerOptions:
    """Validate ``options`` (a parameters dict); a bad value is one ValueError naming its key."""
    options = dict(options or {})
    if unknown := sorted(set(options) - set(OPTION_KEYS)):
        raise ValueError(f"{key}.{unknown[0]}: unknown option; allowed: {', '.join(OPTION_KEYS)}")
    input_size = options.get("input_size")
    if input_size is not None and (
        not _is_int(input_size) or not MIN_INPUT_SIZE <= input_size <= MAX_INPUT_SIZE
    ):
        raise ValueError(
            f"{key}.input_size: {input_size!r} is not an integer in "
            f"{MIN_INPUT_SIZE}..{MAX_INPUT_SIZE} (or null for the variant's own size)"
        )
    stages = _parse_stages(options.get("pooled_stages"), f"{key}.pooled_stages")
    std_stages = _parse_stages(options.get("std_stages"), f"{key}.std_stages")
    precision = options.get("precision") or "fp32"
    if precision not in PRECISIONS:
        raise ValueError(
            f"{key}.precision: {precision!r} is not allowed; allowed: {', '.join(PRECISIONS)}"
        )
    tta = options.get("tta", False)
    if tta is None:
        tta = False
    if not isinstance(tta, bool):
        raise ValueError(f"{key}.tta: {tta!r} is not true or false")
    return FeaturizerOptions(
        input_size=input_size,
        pooled_stages=stages,
        std_stages=std_stages,
        precision=precision,
        tta=tta,
        calibration=_parse_calibration(options.get("calibration"), f"{key}.calibration"),
    )


def _parse_stages(value: Any, key: str) -> tuple[int, ...]:
    stages = value or []
    if not isinstance(stages, list | tuple) or not all(
        _is_int(s) and 1 <= s <= NUM_STAGES for s in stages
    ):
        raise ValueError(f"{key}: {stages!r} is not a list of stage numbers 1..{NUM_STAGES}")
    if len(set(stages)) != len(stages):
        raise ValueError(f"{key}: {list(stages)} repeats a stage")
    return tuple(sorted(stages))


def _parse_calibration(value: dict[str, Any] | None, key: str) -> CalibrationOptions:
    value = dict(value or {})
    if unknown := sorted(set(value) - set(CALIBRATION_KEYS)):
        raise ValueError(
            f"{key}.{unknown[0]}: unknown option; allowed: {', '.join(CALIBRATION_KEYS)}"
        )
    seed = value.get("seed")
    seed = 42 if seed is None else seed
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"{key}.seed: {seed!r} is not a non-negative integer")
    count = value.get("count")
    count = DEFAULT_CALIBRATION_TILES if count is None else count
    if not _is_int(count) or count < 1:
        raise ValueError(f"{key}.count: {count!r} is not a positive integer")
    tiles_dir = value.get("tiles_dir")
    if tiles_dir is not None and not (isinstance(tiles_dir, str | Path) and str(tiles_dir)):
        raise ValueError(f"{key}.tiles_dir: {tiles_dir!r} is not a folder path")
    return CalibrationOptions(str(tiles_dir) if tiles_dir else None, seed, count)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
