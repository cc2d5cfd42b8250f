"""The change PNG: imagery of both dates, both coarse class maps, the change map, legend, scale.

All panels share the chip grid of the change map (north up, in the chips' CRS), so a chip is in
the same place in every panel. Imagery is read at reduced resolution straight from the sources
with rasterio (reprojected onto that grid): 8-bit true colour as it is, anything else (e.g.
Sentinel-2 L1C reflectance in uint16) with a 2-98 % percentile stretch per band.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from affine import Affine  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from aerial_kedro.geo.class_map import NODATA, ClassRaster  # noqa: E402
from aerial_kedro.geo.map_png import NODATA_FACE, draw_scale_bar  # noqa: E402
from aerial_kedro.geo.palette import to_float_rgb  # noqa: E402
from aerial_kedro.geo.preview import read_rgb  # noqa: E402
from aerial_kedro.geo.radiometry import Radiometry  # noqa: E402
from aerial_kedro.geo.radiometry import stretch as radiometry_stretch  # noqa: E402


@dataclass(frozen=True)
class Imagery:
    """An RGB preview (float 0..1, NaN = no data) with a title."""

    rgb: np.ndarray
    title: str


def read_preview(
    paths: Sequence[str],
    crs: str,
    transform: Affine,
    shape: tuple[int, int],
    bands: Sequence[int] = (1, 2, 3),
    radiometry: Radiometry | None = None,
) -> np.ndarray:
    """``(h, w, 3)`` float RGB in 0..1 of the source's rasters on the given grid (NaN = none).

    With ``radiometry`` (the scoring run's conversion) the preview shows what the model saw;
    without it, non-8-bit imagery gets a 2-98 % percentile stretch.
    """
    rgb, dtype = read_rgb(paths, crs, transform, shape, bands)
    if radiometry is not None:
        return np.clip(radiometry_stretch(rgb, radiometry) / 255.0, 0.0, 1.0)
    return stretch(rgb, dtype)


def stretch(rgb: np.ndarray, dtype: str, low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """uint8: /255. Other types: per-band ``low``-``high`` percentile stretch to 0..1."""
    out = np.asarray(rgb, dtype=np.float32).copy()
    if dtype == "uint8":
        return np.clip(out / 255.0, 0.0, 1.0)
    for k in range(out.shape[-1]):
        band = out[..., k]
        valid = band[np.isfinite(band)]
        if valid.size:
            lo, hi = np.percentile(valid, [low, high])
            out[..., k] = np.clip((band - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    return out


def preview_grid(raster: ClassRaster, max_pixels: int = 900) -> tuple[Affine, tuple[int, int]]:
    """A finer grid over the change raster's extent: up to ``max_pixels`` on its long side."""
    rows, cols = raster.classes.shape
    per_chip = max(1, min(64, max_pixels // max(rows, cols, 1)))
    t = raster.transform
    transform = Affine(t.a / per_chip, 0.0, t.c, 0.0, t.e / per_chip, t.f)
    return transform, (rows * per_chip, cols * per_chip)


def _panel(
    ax: Axes, image: np.ndarray, extent: tuple[float, ...], title: str, **kwargs: Any
) -> None:
    ax.set_facecolor(NODATA_FACE)
    ax.imshow(image, extent=extent, interpolation="nearest", **kwargs)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    draw_scale_bar(ax, length_fraction=0.25, font_size=8)


def _class_image(grid: np.ndarray, colors: Sequence[str]) -> tuple[np.ndarray, dict[str, Any]]:
    cmap = ListedColormap([to_float_rgb(c) for c in colors])
    image = np.ma.masked_equal(grid.astype(np.int16), NODATA)
    return image, {"cmap": cmap, "vmin": -0.5, "vmax": len(colors) - 0.5}


def change_figure(
    change: ClassRaster,
    class_before: np.ndarray,
    class_after: np.ndarray,
    groups: Sequence[str],
    group_colors: Sequence[str],
    imagery: Sequence[Imagery | None],
    title: str,
    summary: Sequence[str] = (),
    chip_counts: Mapping[int, int] | None = None,
) -> Figure:
    """Six panels: imagery before/after, change map; class maps before/after, legend + summary.

    ``class_before``/``class_after`` are coarse-class grids on ``change``'s grid; ``imagery``
    holds the two previews (None = not available, the panel says so); ``summary`` lines are
    printed under the legend; ``chip_counts`` (code -> chips) limits the legend to codes present.
    """
    rows, cols = change.classes.shape
    size_km = abs(change.transform.a) / 1000.0
    extent = (0.0, cols * size_km, 0.0, rows * size_km)
    panel_w = 4.6
    panel_h = max(2.0, panel_w * rows / max(cols, 1))
    fig, axes = plt.subplots(2, 3, figsize=(3 * panel_w + 0.6, 2 * panel_h + 1.3),
                             layout="constrained")  # fmt: skip
    for ax, preview in zip(axes[0, :2], imagery, strict=True):
        if preview is None:
            ax.text(0.5, 0.5, "imagery not readable", ha="center", va="center",
                    transform=ax.transAxes)  # fmt: skip
            ax.set_axis_off()
            continue
        rgb = np.where(np.isfinite(preview.rgb), preview.rgb, 0.9)
        _panel(ax, rgb, extent, preview.title)
    image, style = _class_image(change.classes, list(change.colors or ()))
    _panel(axes[0, 2], image, extent, "change", **style)
    for ax, grid, name in (
        (axes[1, 0], class_before, "before"),
        (axes[1, 1], class_after, "after"),
    ):
        image, style = _class_image(grid, group_colors)
        _panel(ax, image, extent, f"land use {name} (coarse classes)", **style)
    legend_ax = axes[1, 2]
    legend_ax.set_axis_off()
    handles = [Patch(facecolor=to_float_rgb(c), edgecolor="0.3", label=g)
               for g, c in zip(groups, group_colors, strict=True)]  # fmt: skip
    present = chip_counts or {}
    change_handles = [
        Patch(facecolor=to_float_rgb(color), edgecolor="0.3",
              label=f"{name}  ({present[code]} chips)" if code in present else name)
        for code, (name, color) in enumerate(zip(change.class_names, change.colors or (), strict=True))
        if not chip_counts or code in present
    ]  # fmt: skip
    first = legend_ax.legend(handles=handles, loc="upper left", title="land use", fontsize=8,
                             title_fontsize=9, frameon=False)  # fmt: skip
    legend_ax.add_artist(first)
    legend_ax.legend(handles=change_handles, loc="upper right", title="change map", fontsize=8,
                     title_fontsize=9, frameon=False)  # fmt: skip
    legend_ax.text(0.0, 0.0, "\n".join(summary), transform=legend_ax.transAxes, fontsize=8,
                   va="bottom", ha="left", family="monospace")  # fmt: skip
    fig.suptitle(title, fontsize=12)
    return fig
