"""The change PNG: imagery of both dates, both coarse class maps, the change map, legend, scale.

All panels share the chip grid of the change map (north up, in the chips' CRS), so a chip is in
the same place in every panel. Imagery is read at reduced resolution straight from the sources
with rasterio (reprojected onto that grid): 8-bit true colour as it is, anything else (e.g.
Sentinel-2 L1C reflectance in uint16) with a 2-98 % percentile stretch per band.

The change panel tells transitions apart: a changed chip is filled with the class it changed to
and framed in the class it changed from (cropland -> built: red in a yellow frame, water -> built:
red in a blue frame); the legend lists every transition present with its chip count. Cloudy chips
are white with a grey hatch, unlike any class colour. Panel titles carry the dates when given
(:func:`date_label` finds them in file and folder names, or in an OSCD ``dates.txt``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.collections import PatchCollection  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.legend_handler import HandlerBase  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402

from aerial_kedro.geo.band_stack import is_stack_uri, stack_paths  # noqa: E402
from aerial_kedro.geo.class_map import NODATA, ClassRaster  # noqa: E402
from aerial_kedro.geo.map_png import NODATA_FACE, draw_scale_bar  # noqa: E402
from aerial_kedro.geo.palette import to_float_rgb  # noqa: E402


@dataclass(frozen=True)
class Imagery:
    """An RGB preview (float 0..1, NaN = no data) with a title."""

    rgb: np.ndarray
    title: str


# --------------------------------------------------------------------------- dates

# YYYYMMDD or YYYY-MM-DD / YYYY_MM_DD, optionally with a time (T102141), not inside a longer number.
_DATE = re.compile(
    r"(?<![0-9])((?:19|20)[0-9]{2})[-_]?([01][0-9])[-_]?([0-3][0-9])(?:T[0-9]{6})?(?![0-9])"
)
# Sentinel-2 products of the old "OPER" naming carry their *production* time after the site
# code (Pisa's 2015-07-04 image is ..._TL_EPA__20160809T015434_...); the sensing date, when
# there, is a validity (_V) or sensing (_S) field.
_OPER_SENSING = re.compile(r"_[VS]((?:19|20)[0-9]{6})T[0-9]{6}")
_OSCD_FOLDER = re.compile(r"^imgs_([0-9]+)$")
_DATES_TXT = re.compile(r"^\s*date_([0-9]+)\s*:\s*([0-9]{8})\s*$", re.MULTILINE)


def _iso(year: str, month: str, day: str) -> str | None:
    try:
        return date(int(year), int(month), int(day)).isoformat()
    except ValueError:
        return None


def _date_in_name(name: str) -> str | None:
    """The acquisition date a file or folder name states, else None."""
    if "_OPER_" in name.upper():
        found = _OPER_SENSING.search(name)
        return _iso(found[1][:4], found[1][4:6], found[1][6:]) if found else None
    for found in _DATE.finditer(name):
        iso = _iso(*found.groups())
        if iso:
            return iso
    return None


def _oscd_date(folder: Path) -> str | None:
    """``date_N`` of ``<city>/dates.txt`` for an OSCD ``<city>/imgs_N`` folder."""
    number = _OSCD_FOLDER.match(folder.name)
    dates_txt = folder.parent / "dates.txt"
    if not number or not dates_txt.is_file():
        return None
    for found in _DATES_TXT.finditer(dates_txt.read_text(errors="replace")):
        if found[1] == number[1]:
            return _iso(found[2][:4], found[2][4:6], found[2][6:])
    return None


def date_label(source: str) -> str | None:
    """The acquisition date (``YYYY-MM-DD``) of a scoring source, or None when none is stated.

    ``source`` is what a run scored: a raster file, a folder, a band stack
    (``stack:[...]``) or a URL. In order: an OSCD folder ``<city>/imgs_N`` (or a file in it)
    takes ``date_N`` from ``<city>/dates.txt``; then the name (``T32TPP_20180211T102141_B02.tif``,
    ``czech_s2_tci_20220316_cloudy.tif``, ``S2A_MSIL1C_20180211T102141_...``); then its folder's
    name; then, for a local folder, the one date its raster files' names agree on. Old Sentinel-2
    ``_OPER_`` names give a date only from a ``_V``/``_S`` field: the date after their site code
    is when the product was made, not imaged. Only local paths are read; nothing is opened
    beyond a ``dates.txt`` and a folder listing.
    """
    if is_stack_uri(source):
        labels = {date_label(path) for path in stack_paths(source)}
        return labels.pop() if len(labels) == 1 else None
    text = source.rstrip("/").replace("\\", "/")
    local = "://" not in text
    path = Path(text)
    if local:
        for folder in (path, path.parent):
            found = _oscd_date(folder)
            if found:
                return found
    found = _date_in_name(path.name) or _date_in_name(path.parent.name)
    if found or not local or not path.is_dir():
        return found
    names = sorted(p.name for p in path.iterdir() if p.suffix.lower() in (".tif", ".tiff", ".jp2"))
    dates = {_date_in_name(name) for name in names[:200]}
    return dates.pop() if len(dates) == 1 else None


def _dated(title: str, label: str | None) -> str:
    """``before: pisa/imgs_1`` + ``2015-07-04`` -> ``before 2015-07-04: pisa/imgs_1``."""
    if not label:
        return title
    if title in ("before", "after"):
        return f"{title} {label}"
    head, sep, rest = title.partition(": ")
    if sep and head in ("before", "after"):
        return f"{head} {label}: {rest}"
    return f"{title} ({label})"


# --------------------------------------------------------------------------- panels

# Cloudy chips: the change map's white (raster.py), hatched in grey here.
CLOUDY_HATCH = "////"
CLOUDY_HATCH_COLOR = "#8c8c8c"
# A changed chip: the inner square (fill = class after) leaves a frame of this share of the
# chip's side on each side (frame = class before).
FRAME = 0.2


@dataclass(frozen=True)
class TransitionKey:
    """A legend key of a transition: ``fill`` = class after, ``frame`` = class before."""

    fill: str
    frame: str


class _TransitionHandler(HandlerBase):
    def create_artists(self, legend, orig_handle, xdescent, ydescent, width, height, fontsize,
                       trans):  # fmt: skip
        x0, y0 = -xdescent, -ydescent
        inset = 0.25 * min(width, height)
        outer = Rectangle((x0, y0), width, height, facecolor=to_float_rgb(orig_handle.frame),
                          edgecolor="0.3", linewidth=0.5, transform=trans)  # fmt: skip
        inner = Rectangle((x0 + inset, y0 + inset), width - 2 * inset, height - 2 * inset,
                          facecolor=to_float_rgb(orig_handle.fill), edgecolor="none",
                          transform=trans)  # fmt: skip
        return [outer, inner]


def _panel(
    ax: Axes,
    image: np.ndarray,
    extent: tuple[float, float, float, float],
    title: str,
    **kwargs: Any,
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


def _chip_boxes(mask: np.ndarray, size: float, inset: float = 0.0) -> list[Rectangle]:
    """A square per True cell of ``mask`` on the panel's km extent (row 0 at the top)."""
    rows = mask.shape[0]
    side = size * (1.0 - 2 * inset)
    return [Rectangle((c * size + inset * size, (rows - 1 - r) * size + inset * size), side, side)
            for r, c in zip(*np.nonzero(mask), strict=True)]  # fmt: skip


def _draw_change_marks(
    ax: Axes, classes: np.ndarray, size: float, n_groups: int, group_colors: Sequence[str],
    cloudy: int | None,
) -> None:  # fmt: skip
    """Frames (class before) + fills (class after) of changed chips; hatches of cloudy chips."""
    for code in range(n_groups, n_groups + n_groups * n_groups):
        mask = classes == code
        if not mask.any():
            continue
        frm, to = divmod(code - n_groups, n_groups)
        for boxes, color in ((_chip_boxes(mask, size), group_colors[frm]),
                             (_chip_boxes(mask, size, FRAME), group_colors[to])):  # fmt: skip
            ax.add_collection(PatchCollection(boxes, facecolor=to_float_rgb(color),
                                              edgecolor="none", linewidth=0))  # fmt: skip
    if cloudy is not None and (classes == cloudy).any():
        ax.add_collection(PatchCollection(
            _chip_boxes(classes == cloudy, size), facecolor="none",
            edgecolor=to_float_rgb(CLOUDY_HATCH_COLOR), hatch=CLOUDY_HATCH, linewidth=0))  # fmt: skip


def _change_legend(
    change: ClassRaster, groups: Sequence[str], group_colors: Sequence[str],
    chip_counts: Mapping[int, int] | None,
) -> tuple[list[Any], list[str]]:  # fmt: skip
    """(handles, labels) of the change map's codes present (all when no counts): unchanged
    classes, then transitions by chip count, then the codes of chips not compared."""
    n = len(groups)
    colors = list(change.colors or ())
    present = dict(chip_counts or {})
    shown = [code for code in range(len(change.class_names)) if not chip_counts or code in present]

    def label(code: int, name: str) -> str:
        return f"{name}  ({present[code]} chips)" if code in present else name

    stable = [(Patch(facecolor=to_float_rgb(colors[c]), edgecolor="0.3"),
               label(c, f"{change.class_names[c]}, unchanged")) for c in shown if c < n]  # fmt: skip
    changed = sorted((c for c in shown if n <= c < n + n * n), key=lambda c: -present.get(c, 0))
    transitions = []
    for code in changed:
        frm, to = divmod(code - n, n)
        key = TransitionKey(fill=group_colors[to], frame=group_colors[frm])
        transitions.append((key, label(code, f"{groups[frm]} -> {groups[to]}")))
    other = []
    for code in (c for c in shown if c >= n + n * n):
        name = change.class_names[code]
        hatch = (
            {"hatch": CLOUDY_HATCH, "edgecolor": to_float_rgb(CLOUDY_HATCH_COLOR)}
            if name == "cloudy"
            else {"edgecolor": "0.3"}
        )
        other.append((Patch(facecolor=to_float_rgb(colors[code]), **hatch), label(code, name)))
    entries = stable + transitions + other
    return [h for h, _ in entries], [t for _, t in entries]


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
    date_labels: Sequence[str | None] = (None, None),
) -> Figure:
    """Six panels: imagery before/after, change map; class maps before/after, legend + summary.

    ``class_before``/``class_after`` are coarse-class grids on ``change``'s grid; ``imagery``
    holds the two previews (None = not available, the panel says so); ``summary`` lines are
    printed under the legend; ``chip_counts`` (code -> chips) limits the legend to codes present.
    ``date_labels`` (before, after), e.g. from :func:`date_label`, go into the panel titles.
    In the change panel a changed chip is filled with its class after and framed in its class
    before; cloudy chips are hatched.
    """
    before_date, after_date = (list(date_labels) + [None, None])[:2]
    rows, cols = change.classes.shape
    size_km = abs(change.transform.a) / 1000.0
    extent = (0.0, cols * size_km, 0.0, rows * size_km)
    panel_w = 4.6
    panel_h = max(2.0, panel_w * rows / max(cols, 1))
    fig, axes = plt.subplots(2, 3, figsize=(3 * panel_w + 0.6, 2 * panel_h + 1.3),
                             layout="constrained")  # fmt: skip
    for ax, preview, label, name in zip(axes[0, :2], imagery, (before_date, after_date),
                                        ("before", "after"), strict=True):  # fmt: skip
        if preview is None:
            ax.text(0.5, 0.5, "imagery not readable", ha="center", va="center",
                    transform=ax.transAxes)  # fmt: skip
            ax.set_title(_dated(name, label), fontsize=10)
            ax.set_xlim(extent[:2])  # the other panels' box, so the title sits on the panel
            ax.set_ylim(extent[2:])
            ax.set_aspect("equal")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            continue
        rgb = np.where(np.isfinite(preview.rgb), preview.rgb, 0.9)
        _panel(ax, rgb, extent, _dated(preview.title, label))
    image, style = _class_image(change.classes, list(change.colors or ()))
    span = f" {before_date} -> {after_date}" if before_date and after_date else ""
    _panel(axes[0, 2], image, extent, f"change{span}", **style)
    names = list(change.class_names)
    _draw_change_marks(axes[0, 2], change.classes, size_km, len(groups), group_colors,
                       names.index("cloudy") if "cloudy" in names else None)  # fmt: skip
    for ax, grid, name, label in (
        (axes[1, 0], class_before, "before", before_date),
        (axes[1, 1], class_after, "after", after_date),
    ):
        image, style = _class_image(grid, group_colors)
        heading = (
            f"land use {label} ({name}, coarse classes)"
            if label
            else f"land use {name} (coarse classes)"
        )
        _panel(ax, image, extent, heading, **style)
    legend_ax = axes[1, 2]
    legend_ax.set_axis_off()
    handles = [Patch(facecolor=to_float_rgb(c), edgecolor="0.3", label=g)
               for g, c in zip(groups, group_colors, strict=True)]  # fmt: skip
    first = legend_ax.legend(handles=handles, loc="upper left", title="land use", fontsize=8,
                             title_fontsize=9, frameon=False)  # fmt: skip
    legend_ax.add_artist(first)
    change_handles, change_labels = _change_legend(change, groups, group_colors, chip_counts)
    legend_ax.legend(handles=change_handles, labels=change_labels, loc="upper right",
                     title="change map\nfill: class after, frame: before", fontsize=8,
                     title_fontsize=9, frameon=False, handlelength=1.8, handleheight=1.6,
                     handler_map={TransitionKey: _TransitionHandler()})  # fmt: skip
    legend_ax.text(0.0, 0.0, "\n".join(summary), transform=legend_ax.transAxes, fontsize=8,
                   va="bottom", ha="left", family="monospace")  # fmt: skip
    if span and before_date and before_date not in title:
        title = f"{title}  ({before_date} -> {after_date})"
    fig.suptitle(title, fontsize=12)
    return fig
