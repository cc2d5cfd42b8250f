"""Colours for land-use classes: a fixed, legible palette for EuroSAT, a fallback for others.

No matplotlib import here, so executors writing GeoTIFFs do not need it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

Color = str | tuple[int, int, int] | tuple[float, float, float]

EUROSAT_CLASSES: tuple[str, ...] = (
    "AnnualCrop",
    "Forest",
    "HerbaceousVegetation",
    "Highway",
    "Industrial",
    "Pasture",
    "PermanentCrop",
    "Residential",
    "River",
    "SeaLake",
)

EUROSAT_COLORS: dict[str, str] = {
    "AnnualCrop": "#e8c547",  # yellow / ochre
    "Forest": "#17702a",  # dark green
    "HerbaceousVegetation": "#8c9a2e",  # olive
    "Highway": "#2f2f2f",  # near black
    "Industrial": "#8e44ad",  # purple
    "Pasture": "#9be36b",  # light green
    "PermanentCrop": "#f28e2b",  # orange
    "Residential": "#d62728",  # red
    "River": "#3d9be9",  # blue
    "SeaLake": "#0b3c8c",  # dark blue
}

# The `coarse` class scheme (aerial_kedro.class_schemes): the colours of its EuroSAT members.
COARSE_COLORS: dict[str, str] = {
    "cropland": "#e8c547",  # AnnualCrop's ochre
    "forest": "#17702a",  # Forest's dark green
    "grassland": "#9be36b",  # Pasture's light green
    "built": "#d62728",  # Residential's red
    "water": "#3d9be9",  # River's blue
}

# Qualitative fallback (matplotlib's tab20, dark shades first), for unknown class names.
FALLBACK_COLORS: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
    "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)  # fmt: skip

NODATA_COLOR = "#ffffff"


def _key(name: str) -> str:
    """Normalised class name: ``"Sea / Lake"``, ``"sea_lake"`` and ``"SeaLake"`` match."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


_EUROSAT_BY_KEY = {
    _key(name): color for name, color in {**EUROSAT_COLORS, **COARSE_COLORS}.items()
}


def to_rgb(color: Color) -> tuple[int, int, int]:
    """``"#rrggbb"``, ``(r, g, b)`` ints 0..255 or floats 0..1 -> ints 0..255."""
    if isinstance(color, str):
        text = color.lstrip("#")
        if len(text) == 3:
            text = "".join(ch * 2 for ch in text)
        if len(text) != 6:
            raise ValueError(f"not a #rrggbb colour: {color!r}")
        return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)
    values = tuple(color)[:3]
    if len(values) != 3:
        raise ValueError(f"not an RGB colour: {color!r}")
    if any(isinstance(v, float) for v in values) and all(0.0 <= v <= 1.0 for v in values):
        return tuple(round(v * 255) for v in values)  # type: ignore[return-value]
    return tuple(int(v) for v in values)  # type: ignore[return-value]


def to_hex(color: Color) -> str:
    """Any :data:`Color` as ``"#rrggbb"``."""
    r, g, b = to_rgb(color)
    return f"#{r:02x}{g:02x}{b:02x}"


def to_float_rgb(color: Color) -> tuple[float, float, float]:
    """Any :data:`Color` as floats 0..1 (matplotlib)."""
    r, g, b = to_rgb(color)
    return r / 255, g / 255, b / 255


def class_colors(class_names: Sequence[str]) -> list[str]:
    """One ``"#rrggbb"`` per class name: the EuroSAT/coarse palette for known names, else fallback.

    Known names match case- and punctuation-insensitively. Unknown names take the first
    fallback colours not already used, so colours stay distinct for up to ~30 classes.
    """
    colors: list[str | None] = [_EUROSAT_BY_KEY.get(_key(name)) for name in class_names]
    used = {c for c in colors if c is not None}
    spare = [c for c in FALLBACK_COLORS if c not in used]
    n = 0
    for i, color in enumerate(colors):
        if color is None:
            colors[i] = spare[n % len(spare)]
            n += 1
    return [c for c in colors if c is not None]
