"""A quick-look PNG of a class grid: class colours, legend with shares, scale bar, north arrow.

With a ``backdrop`` (a reduced-resolution RGB preview of the scored imagery on the grid's
extent) the classes are drawn translucent over the ground and a plain imagery panel sits next
to them, so a reader can check each chip's class against what is on the ground; without one
(tiles, unreadable imagery) the map is opaque class colours as before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # must precede pyplot; headless executors and CI have no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib_scalebar.scalebar import ScaleBar  # noqa: E402

from aerial_kedro.geo.class_map import NODATA, class_shares  # noqa: E402
from aerial_kedro.geo.palette import Color, class_colors, to_float_rgb  # noqa: E402

NODATA_FACE = "#e6e6e6"


def draw_scale_bar(ax: Axes, length_fraction: float = 0.3, font_size: int = 9) -> None:
    """A scale bar in the lower left of axes drawn in km (matplotlib-scalebar picks a round length
    up to ``length_fraction`` of the panel)."""
    bar = ScaleBar(
        1, "km", location="lower left", length_fraction=length_fraction, box_alpha=0.8,
        font_properties={"size": font_size, "weight": "bold"},
    )
    ax.add_artist(bar)


def _draw_north_arrow(ax: Axes) -> None:
    x = 0.94
    ax.annotate(
        "",
        xy=(x, 0.88),
        xytext=(x, 0.72),
        xycoords="axes fraction",
        arrowprops={"facecolor": "black", "edgecolor": "white", "width": 4, "headwidth": 12},
        zorder=5,
    )
    ax.text(
        x,
        0.935,
        "N",
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=12,
        fontweight="bold",
        bbox={
            "boxstyle": "round,pad=0.15",
            "facecolor": "white",
            "edgecolor": "none",
            "alpha": 0.8,
        },
        zorder=5,
    )


BACKDROP_ALPHA = 0.45


def _grid_extent_km(grid: np.ndarray, chip_size_m: float) -> tuple[float, float]:
    return grid.shape[1] * chip_size_m / 1000, grid.shape[0] * chip_size_m / 1000


def _finish_panel(ax: Axes, width_km: float, height_km: float, title: str | None) -> None:
    ax.set_xlim(0, width_km)
    ax.set_ylim(0, height_km)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=11)
    draw_scale_bar(ax)
    _draw_north_arrow(ax)


def _draw_panel(
    ax: Axes,
    grid: np.ndarray,
    cmap: ListedColormap,
    n_classes: int,
    chip_size_m: float,
    title: str | None,
) -> None:
    width_km, height_km = _grid_extent_km(grid, chip_size_m)
    image = np.ma.masked_equal(grid.astype(np.int16), NODATA)
    ax.set_facecolor(NODATA_FACE)
    ax.imshow(
        image,
        cmap=cmap,
        vmin=-0.5,
        vmax=n_classes - 0.5,
        interpolation="nearest",
        extent=(0, width_km, 0, height_km),
    )
    _finish_panel(ax, width_km, height_km, title)


def class_overlay(
    grid: np.ndarray, colors: Sequence[Color], alpha: float = BACKDROP_ALPHA
) -> np.ndarray:
    """``(rows, cols, 4)`` RGBA of a class grid: class colour at ``alpha``, nodata transparent.

    Nodata chips (and indices without a colour) stay clear so the imagery shows through
    untinted where nothing was classified.
    """
    grid = np.asarray(grid)
    palette = np.array([(*to_float_rgb(c), alpha) for c in colors], dtype=np.float32)
    valid = (grid != NODATA) & (grid < len(palette))
    rgba = np.zeros((*grid.shape, 4), dtype=np.float32)
    rgba[valid] = palette[grid[valid].astype(np.intp)]
    return rgba


def _imagery(backdrop: np.ndarray) -> np.ndarray:
    """The preview with its no-data pixels (NaN) in the no-data grey."""
    rgb = np.asarray(backdrop, dtype=np.float32)
    return np.where(np.isfinite(rgb), np.clip(rgb, 0.0, 1.0), to_float_rgb(NODATA_FACE))


def _draw_backdrop_panel(
    ax: Axes,
    grid: np.ndarray,
    backdrop: np.ndarray,
    overlay: np.ndarray | None,
    chip_size_m: float,
    title: str | None,
) -> None:
    """Imagery over the grid's extent, optionally with the translucent classes on top."""
    width_km, height_km = _grid_extent_km(grid, chip_size_m)
    extent = (0, width_km, 0, height_km)
    ax.imshow(_imagery(backdrop), extent=extent, interpolation="antialiased")
    if overlay is not None:
        # chip edges are where the colour changes: no outlines, they would hide the ground
        ax.imshow(overlay, extent=extent, interpolation="nearest")
    _finish_panel(ax, width_km, height_km, title)


def map_figure(
    grid: np.ndarray,
    class_names: Sequence[str],
    colors: Sequence[Color] | None = None,
    chip_size_m: float = 640.0,
    title: str | None = None,
    shares: Mapping[str, float] | None = None,
    *,
    smoothed: np.ndarray | None = None,
    panel_titles: tuple[str, str] | None = None,
    backdrop: np.ndarray | None = None,
    alpha: float = BACKDROP_ALPHA,
    unit: str = "chip",
) -> Figure:
    """A class grid (north up, one cell per chip) as a matplotlib figure; close it when done.

    The legend lists every class with its share of valid chips (``shares``, default computed
    from ``grid``; with ``smoothed`` both shares are shown, raw -> smoothed). Each panel has a
    scale bar and a north arrow (grid north; the UTM grid is within ~2 degrees of true north).

    Without ``backdrop``: opaque class colours; ``smoothed`` adds a second panel on the right.
    With ``backdrop`` (``(h, w, 3)`` float RGB 0..1, NaN = no imagery, covering exactly the
    grid's extent at any resolution): two panels, the plain imagery and the per-chip classes
    at ``alpha`` over it - the side-by-side imagery is what lets a chip be checked against the
    ground, which a smoothed panel cannot; ``smoothed`` then only contributes its shares.

    ``unit`` names what one grid cell is in the legend and panel titles: ``chip``, or ``cell``
    when overlapping chips were averaged into cells of the stride (a cell is then smaller than
    the chip the model saw).
    """
    grid = np.asarray(grid)
    panel_titles = panel_titles or (f"per {unit}", "smoothed (3x3 plurality)")
    colors = list(colors) if colors is not None else class_colors(class_names)
    n = len(class_names)
    cmap = ListedColormap([to_float_rgb(c) for c in colors[:n]])
    shares = dict(shares) if shares is not None else class_shares(grid, class_names)
    smooth_shares = class_shares(smoothed, class_names) if smoothed is not None else None

    if backdrop is not None:
        overlay = class_overlay(grid, colors[:n], alpha)
        panels: list = [(None, "imagery"), (overlay, f"classes over imagery ({panel_titles[0]})")]
    else:
        panels = [(grid, panel_titles[0] if smoothed is not None else None)]
        if smoothed is not None:
            panels.append((np.asarray(smoothed), panel_titles[1]))
    rows, cols = grid.shape
    panel_w = 5.0
    panel_h = max(1.5, panel_w * rows / max(cols, 1))
    fig, axes = plt.subplots(
        1,
        len(panels),
        figsize=(panel_w * len(panels) + 3.2, panel_h + (0.9 if title else 0.5)),
        squeeze=False,
        layout="constrained",
    )
    for ax, (data, panel_title) in zip(axes[0], panels, strict=True):
        if backdrop is not None:
            _draw_backdrop_panel(ax, grid, backdrop, data, chip_size_m, panel_title)
        else:
            _draw_panel(ax, data, cmap, n, chip_size_m, panel_title)
    handles = []
    for i, name in enumerate(class_names):
        label = f"{name}  {100 * shares.get(name, 0.0):.1f} %"
        if smooth_shares is not None:
            label += f" → {100 * smooth_shares[name]:.1f} %"
        handles.append(Patch(facecolor=to_float_rgb(colors[i]), edgecolor="0.3", label=label))
    if (grid == NODATA).any():
        if backdrop is not None:
            handles.append(Patch(facecolor="none", edgecolor="0.3", label="not classified"))
        else:
            handles.append(Patch(facecolor=NODATA_FACE, edgecolor="0.3", label="no data"))
    legend_title = f"class (share of {unit}s)\n{unit} = {chip_size_m:g} m"
    if smooth_shares is not None and backdrop is not None:
        legend_title += f", per {unit} → 3x3 smoothed"
    fig.legend(
        handles=handles,
        loc="outside right center",
        fontsize=9,
        frameon=False,
        title=legend_title,
        title_fontsize=9,
    )
    if title:
        fig.suptitle(title, fontsize=12)
    return fig


def render_map_png(
    path: str,
    grid: np.ndarray,
    class_names: Sequence[str],
    colors: Sequence[Color] | None = None,
    chip_size_m: float = 640.0,
    title: str | None = None,
    shares: Mapping[str, float] | None = None,
    *,
    smoothed: np.ndarray | None = None,
    panel_titles: tuple[str, str] | None = None,
    backdrop: np.ndarray | None = None,
    dpi: int = 150,
    unit: str = "chip",
) -> str:
    """Render :func:`map_figure` to a PNG file; returns ``path``."""
    fig = map_figure(
        grid,
        class_names,
        colors,
        chip_size_m,
        title,
        shares,
        smoothed=smoothed,
        panel_titles=panel_titles,
        backdrop=backdrop,
        unit=unit,
    )
    try:
        fig.savefig(path, dpi=dpi, facecolor="white")
    finally:
        plt.close(fig)
    return path


def shares_figure(
    shares: Mapping[str, float],
    class_names: Sequence[str],
    colors: Sequence[Color] | None = None,
    title: str | None = None,
) -> Figure:
    """Class shares as horizontal bars in the class colours (for results without a map)."""
    colors = list(colors) if colors is not None else class_colors(class_names)
    values = [100 * shares.get(name, 0.0) for name in class_names]
    fig, ax = plt.subplots(figsize=(7.0, 0.45 * len(class_names) + 1.2), layout="constrained")
    positions = np.arange(len(class_names))[::-1]
    ax.barh(
        positions,
        values,
        color=[to_float_rgb(c) for c in colors[: len(class_names)]],
        edgecolor="0.3",
    )
    ax.set_yticks(positions, class_names)
    ax.set_xlim(0, max(100.0, max(values, default=0.0)) * 1.08)
    ax.set_xlabel("share of scored tiles (%)")
    for y, value in zip(positions, values, strict=True):
        ax.text(value + 1, y, f"{value:.1f} %", va="center", fontsize=9)
    if title:
        ax.set_title(title, fontsize=11)
    return fig
