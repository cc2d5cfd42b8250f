"""Radiometry: source pixel values -> the 8-bit true colour the featurizer was trained on.

The featurizer and classifier learnt from EuroSAT RGB JPEGs, which were made from Sentinel-2
L1C top-of-atmosphere digital numbers (DN = reflectance x 10000). A 16-bit source must be
mapped to that same 8-bit look before featurization, per band::

    8-bit = clip((DN * scale + offset - min) / (max - min) * 255, 0, 255)

``min`` / ``max`` are one number or one per band (R, G, B).

Calibration of the ``sentinel2_l1c`` preset (measured 2026-11, see the numbers): per-band
quantiles (5, 10, 25, 50, 75, 90, 95 %) of 3,000 random EuroSAT RGB tiles were matched with the
same quantiles of the OSCD L1C DNs of the European scenes (pisa/imgs_1, montpellier/imgs_1 and
imgs_2, pooled, zero DNs left out) by a least-squares line per band:

====  ==============================  ================  ===================
band  EuroSAT quantiles 5/50/95 (8b)  OSCD DN 5/50/95   fit: DN at 0 / 255
====  ==============================  ================  ===================
R     30 / 75 / 196                   ~650 / 1250 / 2300  507 / 2772
G     52 / 90 / 166                   ~840 / 1200 / 1950  465 / 2672
B     70 / 97 / 160                   ~990 / 1260 / 1850  407 / 2648
====  ==============================  ================  ===================

The three slopes agree (0.113-0.116 per DN, i.e. a ~2,230 DN wide window); the offsets differ
per band, which is what makes EuroSAT blue-heavy (mean RGB 88/97/104 on those 3,000 tiles).
The preset rounds the fit to reflectance: R 0.051-0.277, G 0.047-0.267, B 0.041-0.265.
Converted this way, pisa/imgs_1 has mean RGB 95/103/104 and montpellier/imgs_1 101/99/107
(EuroSAT 88/97/104).

``sentinel2_l2a`` (bottom-of-atmosphere, no L2A data at hand to calibrate against EuroSAT) is
ESA's own true-colour (TCI) mapping, reflectance 0-0.2 -> 0-255, so a 16-bit L2A scene scores
exactly like the 8-bit L2A TCI products this project already scores (e.g. the Czech scene).

Processing baseline 04.00 (products from 25 January 2022 on) adds +1000 to every L1C and L2A
DN (``RADIO_ADD_OFFSET`` / ``BOA_ADD_OFFSET`` = -1000 in the product metadata). Nothing in a
GeoTIFF says which baseline made it, so it is declared, never guessed: the presets
``sentinel2_l1c_offset`` and ``sentinel2_l2a_offset`` subtract it (offset -0.1 in reflectance),
or a mapping sets ``offset`` itself.

Everything here is numpy on one chip; Spark tasks call :func:`to_uint8` before featurizing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np

AUTO, NONE = "auto", "none"
MAPPING_KEYS = ("scale", "offset", "min", "max")


@dataclass(frozen=True)
class Radiometry:
    """A linear per-band stretch to 8 bits; ``name`` is the preset (or ``custom``)."""

    name: str
    scale: float = 1.0
    offset: float = 0.0
    min: tuple[float, float, float] = (0.0, 0.0, 0.0)
    max: tuple[float, float, float] = (255.0, 255.0, 255.0)
    # The source's own conversion, when this one was matched to another date's pixels
    # (geo.relative_radiometry): clouds are judged on it.
    base: Radiometry | None = None

    @property
    def is_identity(self) -> bool:
        """8-bit sources read as they are (no arithmetic, not even a clip)."""
        return self.name == NONE

    def to_dict(self) -> dict[str, Any]:
        """Plain values (for Spark closures, run identity and reports)."""
        data: dict[str, Any] = {
            "name": self.name,
            "scale": self.scale,
            "offset": self.offset,
            "min": list(self.min),
            "max": list(self.max),
        }
        if self.base is not None:  # absent otherwise: run identities of plain runs unchanged
            data["base"] = self.base.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Radiometry:
        return cls(
            name=str(data["name"]),
            scale=float(data["scale"]),
            offset=float(data["offset"]),
            min=_three("min", data["min"]),
            max=_three("max", data["max"]),
            base=cls.from_dict(data["base"]) if data.get("base") else None,
        )

    def key(self) -> str:
        """Canonical text of the conversion: part of a scoring run's identity."""
        return json.dumps(self.to_dict(), sort_keys=True)


class _Stretch(TypedDict):
    """The keyword arguments a preset shares with its ``_offset`` twin."""

    scale: float
    min: tuple[float, float, float]
    max: tuple[float, float, float]


_L1C: _Stretch = {"scale": 1e-4, "min": (0.051, 0.047, 0.041), "max": (0.277, 0.267, 0.265)}
_L2A: _Stretch = {"scale": 1e-4, "min": (0.0, 0.0, 0.0), "max": (0.2, 0.2, 0.2)}
PRESETS: dict[str, Radiometry] = {
    NONE: Radiometry(NONE),
    "sentinel2_l1c": Radiometry("sentinel2_l1c", **_L1C),
    "sentinel2_l1c_offset": Radiometry("sentinel2_l1c_offset", offset=-0.1, **_L1C),
    "sentinel2_l2a": Radiometry("sentinel2_l2a", **_L2A),
    "sentinel2_l2a_offset": Radiometry("sentinel2_l2a_offset", offset=-0.1, **_L2A),
}
# What `auto` picks for sources that are not 8-bit: Sentinel-2 L1C, the training imagery.
AUTO_DEFAULT = "sentinel2_l1c"


def _three(key: str, value: Any) -> tuple[float, float, float]:
    if isinstance(value, bool):
        raise ValueError(f"{key}: '{value}' is not a number or three numbers (R, G, B)")
    if isinstance(value, int | float):
        return (float(value),) * 3
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 3:
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            return tuple(float(v) for v in value)  # type: ignore[return-value]
    raise ValueError(f"{key}: '{value}' is not a number or three numbers (R, G, B)")


def parse_radiometry(value: Any) -> str | Radiometry:
    """Validate the ``scoring.radiometry`` parameter: ``"auto"`` or a :class:`Radiometry`.

    Raises ``ValueError`` with a one-line message (without the parameter name) when the value
    is an unknown preset or a malformed mapping.
    """
    if value is None or value == AUTO:
        return AUTO
    if isinstance(value, str):
        if value in PRESETS:
            return PRESETS[value]
        allowed = ", ".join((AUTO, *PRESETS))
        raise ValueError(f"'{value}' is not a preset; allowed: {allowed}, or a mapping "
                         "{scale, offset, min, max}")  # fmt: skip
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(MAPPING_KEYS))
        if unknown:
            raise ValueError(f"unknown key(s) {unknown}; a mapping has {', '.join(MAPPING_KEYS)}")
        missing = [key for key in ("min", "max") if key not in value]
        if missing:
            raise ValueError(f"mapping needs {' and '.join(missing)} (the display range)")
        numbers = {}
        for key, default in (("scale", 1.0), ("offset", 0.0)):
            number = value.get(key, default)
            if isinstance(number, bool) or not isinstance(number, int | float):
                raise ValueError(f"{key}: '{number}' is not a number")
            numbers[key] = float(number)
        low, high = _three("min", value["min"]), _three("max", value["max"])
        if not all(h > lo for lo, h in zip(low, high, strict=True)):
            raise ValueError(f"max {list(high)} must exceed min {list(low)} in every band")
        if numbers["scale"] == 0:
            raise ValueError("scale: 0 maps every pixel to one value")
        return Radiometry("custom", numbers["scale"], numbers["offset"], low, high)
    raise ValueError(f"'{value}' is not a preset name or a mapping {{scale, offset, min, max}}")


def resolve_radiometry(value: str | Radiometry, dtype: str) -> Radiometry:
    """The conversion for sources of ``dtype``: ``auto`` = as-is for uint8, L1C for the rest.

    Raises ``ValueError`` when ``auto`` meets floating-point pixels (reflectance 0-1? DN?
    nothing says), and when ``none`` meets anything but 8-bit pixels.
    """
    if isinstance(value, Radiometry):
        if value.is_identity and dtype != "uint8":
            raise ValueError(
                f"{dtype} pixels cannot be read as they are (radiometry none): declare a "
                "conversion (a preset such as sentinel2_l1c, or {scale, offset, min, max})"
            )
        return value
    if dtype == "uint8":
        return PRESETS[NONE]
    if np.issubdtype(np.dtype(dtype), np.integer):
        return PRESETS[AUTO_DEFAULT]
    raise ValueError(
        f"{dtype} pixels: radiometry auto only knows 8-bit and integer digital numbers; "
        "declare a conversion ({scale, offset, min, max})"
    )


def stretch(pixels: np.ndarray, radiometry: Radiometry) -> np.ndarray:
    """HWC pixels -> float32 on the 8-bit scale, *not* clipped (255 = the display maximum).

    Values above 255 keep the colour of what the 8-bit clip saturates (bright sand stays
    red-ish, cloud stays grey): :func:`cloud_fraction` looks at these.
    """
    if radiometry.is_identity:
        return pixels.astype(np.float32)
    # float64: DN + 1000 with offset -0.1 must give what DN gives (float32 rounds them apart).
    values = pixels.astype(np.float64) * radiometry.scale + radiometry.offset
    low, high = np.asarray(radiometry.min), np.asarray(radiometry.max)
    return ((values - low) / (high - low) * 255.0).astype(np.float32)


def to_uint8(pixels: np.ndarray, radiometry: Radiometry) -> np.ndarray:
    """HWC pixels (R, G, B last) -> uint8 HWC with the conversion applied (a no-op for ``none``)."""
    if radiometry.is_identity and pixels.dtype == np.uint8:
        return pixels
    return stretched_to_uint8(stretch(pixels, radiometry))


def stretched_to_uint8(values: np.ndarray) -> np.ndarray:
    """The 8-bit pixels of :func:`stretch` output: rounded and clipped to 0-255."""
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- clouds

# A cloud pixel on the 8-bit scale (before clipping, see `stretch`): its darkest band above
# CLOUD_MIN_BRIGHTNESS and its bands within CLOUD_MAX_SPREAD of each other (white/grey).
# Tuned on the Czech scene (8-bit L2A TCI): the 2022-03-16 date (cumulus over the east half)
# against the clear 2022-03-19 one; checked against the eight cloud-free OSCD L1C scenes
# (sentinel2_l1c stretch), where every flagged pixel is a false alarm. Share of pixels flagged
# (spread <= 40; the spread hardly matters below 60, cloud tops have a median spread of 16):
#
#   darkest band >   150    170    185    200
#   Czech cloudy     7.5 %  6.7 %  6.2 %  5.8 %
#   Czech clear      0.2 %  0.1 %  0.1 %  0.1 %
#   Pisa, Montpellier (4 scenes, roofs, runways)   1.8-4.4 %  1.3-2.1 %  0.9-1.4 %  0.6-0.9 %
#   Abu Dhabi, Las Vegas (4 scenes, bright sand)   6.8-20 %   3.1-11 %   1.9-5.2 %  1.3-2.2 %
#
# 185 keeps 83 % of the 150 cloud signal and cuts the false alarms 3-4x. Judging on the
# unclipped values matters for 16-bit sources: clipped at 255, desert sand turns white too
# (Abu Dhabi imgs_1: 38 % flagged on clipped pixels, 5 % unclipped). Thin haze is not flagged
# (the clear date's east: darkest band under ~130), nor are cloud shadows; grey concrete and
# snow are (a heuristic, not a cloud mask).
CLOUD_MIN_BRIGHTNESS = 185
CLOUD_MAX_SPREAD = 40


def cloud_mask(
    rgb: np.ndarray,
    min_brightness: int = CLOUD_MIN_BRIGHTNESS,
    max_spread: int = CLOUD_MAX_SPREAD,
) -> np.ndarray:
    """HxW bool: pixels whose darkest band exceeds ``min_brightness`` and whose bands differ
    by at most ``max_spread`` (white/grey: cloud, also snow and bright roofs - a heuristic).
    ``rgb`` is HWC on the 8-bit scale: uint8 pixels or :func:`stretch` output."""
    arr = np.asarray(rgb, dtype=np.float32)
    low, high = arr.min(axis=-1), arr.max(axis=-1)
    return (low > min_brightness) & (high - low <= max_spread)


def cloud_fraction(rgb: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Share of the valid pixels of an HWC chip on the 8-bit scale (uint8, or unclipped
    :func:`stretch` output for converted sources) that look like cloud (0 when none valid)."""
    return cloud_share(cloud_mask(rgb), valid)


def cloud_share(cloudy: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Share of the valid pixels that a :func:`cloud_mask` marks (0 when none valid)."""
    if valid is None:
        return float(cloudy.mean()) if cloudy.size else 0.0
    n_valid = int(valid.sum())
    return float((cloudy & valid).sum() / n_valid) if n_valid else 0.0
