"""Relative radiometric normalisation: one date's pixels matched to another date's.

Two dates of the same place differ in haze, sun angle and sensor calibration as well as in
land use; a classifier sees all of it, and a change score flags it. Before scoring a date, its
conversion to 8 bits (:class:`~aerial_kedro.geo.radiometry.Radiometry`) can be adjusted so that
its pixels have the reference date's mean and standard deviation, band by band, over the ground
both cover (moment matching, the classic relative normalisation of a whole scene). Cloud-like
pixels on either date are left out of the statistics. The adjustment is linear, so it folds
into the conversion's ``min``/``max``: the chips are read exactly as before, only stretched
differently, and the adjusted conversion is part of the scoring run's identity.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import shapely
from affine import Affine

from aerial_kedro.geo.preview import read_rgb
from aerial_kedro.geo.radiometry import Radiometry, cloud_mask, stretch

MATCHED = "matched"
# Pixels of the common area the statistics are computed on (read at reduced resolution).
MAX_SAMPLE_PX = 1_000_000
MIN_SAMPLE_PX = 1_000
_IDENTITY_RANGE = ((0.0, 0.0, 0.0), (255.0, 255.0, 255.0))


def fit_moments(
    values: np.ndarray, reference: np.ndarray, valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-band ``(gain, bias)`` so that ``gain * values + bias`` has the mean and standard
    deviation of ``reference`` over the ``valid`` pixels (``values``/``reference`` HWC)."""
    v = values[valid].astype(np.float64)
    r = reference[valid].astype(np.float64)
    if len(v) < MIN_SAMPLE_PX:
        raise ValueError(f"only {len(v)} clear pixels in common (need {MIN_SAMPLE_PX})")
    spread = v.std(axis=0)
    if (spread <= 0).any():
        raise ValueError("a band has no contrast over the common area")
    gain = r.std(axis=0) / spread
    bias = r.mean(axis=0) - gain * v.mean(axis=0)
    return gain, bias


def compose(radiometry: Radiometry, gain: Iterable[float], bias: Iterable[float]) -> Radiometry:
    """The conversion whose :func:`~aerial_kedro.geo.radiometry.stretch` is
    ``gain * stretch(radiometry) + bias`` (per band, before the 8-bit clip).

    ``stretch`` = ``(DN * scale + offset - min) / (max - min) * 255``; scaling it by ``gain``
    and shifting by ``bias`` is the same stretch with ``max' - min' = (max - min) / gain`` and
    ``min' = min - bias * (max - min) / (gain * 255)``.
    """
    low, high = (
        _IDENTITY_RANGE if radiometry.is_identity else (radiometry.min, radiometry.max)
    )
    new_low, new_high = [], []
    for lo, hi, g, c in zip(low, high, gain, bias, strict=True):
        width = (hi - lo) / g
        start = lo - c * (hi - lo) / (g * 255.0)
        new_low.append(float(start))
        new_high.append(float(start + width))
    return Radiometry(
        MATCHED,
        radiometry.scale,
        radiometry.offset,
        tuple(new_low),  # type: ignore[arg-type]
        tuple(new_high),  # type: ignore[arg-type]
        base=radiometry.base or radiometry,
    )


def common_grid(
    area: shapely.Geometry, min_resolution: float, max_pixels: int = MAX_SAMPLE_PX
) -> tuple[Affine, tuple[int, int]]:
    """A north-up grid over ``area``'s bounds with at most ``max_pixels`` pixels."""
    minx, miny, maxx, maxy = area.bounds
    resolution = max(min_resolution, math.sqrt((maxx - minx) * (maxy - miny) / max_pixels))
    shape = (max(1, round((maxy - miny) / resolution)), max(1, round((maxx - minx) / resolution)))
    return Affine(resolution, 0.0, minx, 0.0, -resolution, maxy), shape


def match_radiometry(
    source: Sequence[str],
    radiometry: Radiometry,
    reference: Sequence[str],
    reference_radiometry: Radiometry,
    crs: str,
    area: shapely.Geometry,
    bands: Sequence[int] = (1, 2, 3),
    min_resolution: float = 10.0,
) -> tuple[Radiometry, dict[str, Any]]:
    """``source`` read with a conversion matched to ``reference`` read with its own.

    ``source``/``reference`` are plan sources (rasters or band stacks), ``area`` the ground both
    cover in ``crs``. Returns the matched conversion and what was fitted (gain, bias, pixels, and
    the :func:`contrast` of both over the common clear pixels).
    """
    if area.is_empty:
        raise ValueError("the source and the reference do not overlap")
    transform, shape = common_grid(area, min_resolution)
    raw, _ = read_rgb(source, crs, transform, shape, bands)
    reference_raw, _ = read_rgb(reference, crs, transform, shape, bands)
    values = stretch(np.nan_to_num(raw), radiometry)
    target = stretch(np.nan_to_num(reference_raw), reference_radiometry)
    valid = (
        np.isfinite(raw).all(axis=-1)
        & np.isfinite(reference_raw).all(axis=-1)
        & ~cloud_mask(values)
        & ~cloud_mask(target)
    )
    gain, bias = fit_moments(values, target, valid)
    fit = {
        "gain": [round(float(g), 4) for g in gain],
        "bias": [round(float(b), 3) for b in bias],
        "pixels": int(valid.sum()),
        "resolution_m": float(transform.a),
        "contrast": contrast(values, valid),
        "reference_contrast": contrast(target, valid),
    }
    return compose(radiometry, gain, bias), fit


def contrast(values: np.ndarray, valid: np.ndarray) -> float:
    """Mean per-band standard deviation of the valid pixels on the 8-bit scale: haze lowers it
    (Czech 16 March, hazy: 15; 19 March, clear: 24)."""
    return round(float(values[valid].std(axis=0).mean()), 3)
