"""Chip predictions -> a georeferenced class raster (one pixel per chip), smoothing and shares.

Pixel ``(i, j)`` of a class grid is chip ``(row0 + i, col0 + j)`` of the global chip grid
(see :mod:`aerial_kedro.geo.grid`), so its transform is
``Affine(size, 0, col0 * size, 0, -size, -row0 * size)`` with ``size`` the chip side.
Classes are uint8 indices into ``class_names``; :data:`NODATA` (255) marks chips that were
not classified (outside the footprint, empty, or skipped).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS

from aerial_kedro.geo.grid import grid_transform
from aerial_kedro.geo.palette import Color, class_colors, to_hex, to_rgb

NODATA = 255


@dataclass(frozen=True)
class ClassGrid:
    """A class raster: ``classes`` uint8 (NODATA where unknown), ``confidence`` float32 (NaN)."""

    classes: np.ndarray
    confidence: np.ndarray
    row0: int
    col0: int
    chip_size_m: float

    @property
    def transform(self) -> Affine:
        return grid_transform(self.row0, self.col0, self.chip_size_m)

    @property
    def shape(self) -> tuple[int, int]:
        return self.classes.shape


def predictions_to_grid(
    rows: Sequence[int] | np.ndarray,
    cols: Sequence[int] | np.ndarray,
    class_index: Sequence[int] | np.ndarray,
    confidence: Sequence[float] | np.ndarray | None = None,
    *,
    chip_size_m: float = 640.0,
    extent: tuple[int, int, int, int] | None = None,
) -> ClassGrid:
    """Place chip predictions on a class grid.

    ``extent`` is ``(row0, col0, n_rows, n_cols)`` (e.g. :func:`grid.grid_extent` of all
    planned chips, so unclassified chips show as nodata); by default the predictions' bounding
    block. Where a chip is predicted more than once, the most confident prediction wins.
    """
    r = np.asarray(rows, dtype=np.int64)
    c = np.asarray(cols, dtype=np.int64)
    k = np.asarray(class_index, dtype=np.int64)
    conf = (
        np.ones(len(k), dtype=np.float32)
        if confidence is None
        else np.asarray(confidence, dtype=np.float32)
    )
    if not (len(r) == len(c) == len(k) == len(conf)):
        raise ValueError("rows, cols, class_index and confidence must have the same length")
    if len(k) and (k.min() < 0 or k.max() >= NODATA):
        raise ValueError(f"class indices must be in 0..{NODATA - 1}")
    if extent is None:
        if not len(r):
            raise ValueError("no predictions and no extent")
        extent = (
            int(r.min()),
            int(c.min()),
            int(r.max() - r.min() + 1),
            int(c.max() - c.min() + 1),
        )
    row0, col0, n_rows, n_cols = extent
    i, j = r - row0, c - col0
    if len(i) and (i.min() < 0 or j.min() < 0 or i.max() >= n_rows or j.max() >= n_cols):
        raise ValueError(f"predictions fall outside the extent {extent}")
    classes = np.full((n_rows, n_cols), NODATA, dtype=np.uint8)
    best = np.full((n_rows, n_cols), np.nan, dtype=np.float32)
    # Write in increasing confidence so the most confident duplicate is written last.
    order = np.argsort(conf, kind="stable")
    classes[i[order], j[order]] = k[order]
    best[i[order], j[order]] = conf[order]
    return ClassGrid(classes, best, row0, col0, float(chip_size_m))


def colormap_entries(colors: Sequence[Color]) -> dict[int, tuple[int, int, int, int]]:
    """GDAL colour table: class index -> RGBA, and NODATA -> transparent."""
    table = {i: (*to_rgb(color), 255) for i, color in enumerate(colors)}
    table[NODATA] = (0, 0, 0, 0)
    return table


def write_class_geotiff(
    path: str,
    grid_array: np.ndarray,
    transform: Affine,
    crs: CRS | str,
    class_names: Sequence[str],
    colors: Sequence[Color] | None = None,
    *,
    tags: Mapping[str, Any] | None = None,
) -> str:
    """Write a one-band uint8 class GeoTIFF (nodata 255) with a colour table and class names.

    The dataset tags hold ``class_names`` and ``class_colors`` (JSON lists), ``nodata_class``
    and one ``CLASS_<i>=<name>`` entry per class (repeated on band 1), plus any ``tags``.
    ``colors`` default to :func:`palette.class_colors` of the names.
    """
    grid_array = np.asarray(grid_array)
    if grid_array.ndim != 2:
        raise ValueError("grid_array must be 2-D")
    valid = grid_array[grid_array != NODATA]
    if valid.size and int(valid.max()) >= len(class_names):
        raise ValueError(f"class index {int(valid.max())} but only {len(class_names)} class names")
    colors = list(colors) if colors is not None else class_colors(class_names)
    if len(colors) < len(class_names):
        raise ValueError(f"{len(colors)} colours for {len(class_names)} classes")
    height, width = grid_array.shape
    name_tags = {f"CLASS_{i}": name for i, name in enumerate(class_names)}
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=1,
        dtype="uint8",
        crs=CRS.from_user_input(crs),
        transform=transform,
        nodata=NODATA,
        compress="deflate",
    ) as dst:
        # The colour table sets the palette photometric tag, which TIFF forbids once pixels are written.
        dst.write_colormap(1, colormap_entries(colors[: len(class_names)]))
        dst.write(grid_array.astype(np.uint8), 1)
        dst.set_band_description(1, "land_use_class")
        dst.update_tags(
            class_names=json.dumps(list(class_names)),
            class_colors=json.dumps([to_hex(c) for c in colors[: len(class_names)]]),
            nodata_class=str(NODATA),
            **name_tags,
            **{k: str(v) for k, v in (tags or {}).items()},
        )
        dst.update_tags(1, **name_tags)
    return path


@dataclass(frozen=True)
class ClassRaster:
    """Everything a class GeoTIFF holds: the class grid, where it lies, and what its values mean.

    ``crs is None`` (see :meth:`empty`) stands for "no georeferenced result", e.g. a run that
    scored a folder of plain tiles: there is nothing to place on a map.
    """

    classes: np.ndarray
    transform: Affine
    crs: str | None
    class_names: tuple[str, ...]
    colors: tuple[str, ...] | None = None
    tags: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def empty(cls, class_names: Sequence[str]) -> ClassRaster:
        """A result without georeference (nothing to write)."""
        return cls(np.zeros((0, 0), dtype=np.uint8), Affine.identity(), None, tuple(class_names))

    @property
    def is_georeferenced(self) -> bool:
        return self.crs is not None and self.classes.size > 0

    def write(self, path: str) -> str:
        """Write it with :func:`write_class_geotiff`; returns ``path``."""
        if not self.is_georeferenced:
            raise ValueError("a class raster without CRS or cells cannot be written as a GeoTIFF")
        return write_class_geotiff(
            path,
            self.classes,
            self.transform,
            self.crs,
            self.class_names,
            list(self.colors) if self.colors else None,
            tags=self.tags,
        )


def read_class_raster(path: str) -> ClassRaster:
    """Read a GeoTIFF written by :func:`write_class_geotiff` back into a :class:`ClassRaster`."""
    reserved = {"class_names", "class_colors", "nodata_class", "AREA_OR_POINT"}
    with rasterio.open(path) as src:
        tags = src.tags()
        names = tuple(json.loads(tags["class_names"]))
        colors = tuple(json.loads(tags["class_colors"])) if "class_colors" in tags else None
        extra = {
            key: value
            for key, value in tags.items()
            if key not in reserved and not key.startswith("CLASS_")
        }
        return ClassRaster(
            src.read(1),
            src.transform,
            CRS.from_user_input(src.crs).to_string(),
            names,
            colors,
            extra,
        )


def read_class_names(path: str) -> list[str]:
    """The ``class_names`` stored by :func:`write_class_geotiff`."""
    with rasterio.open(path) as src:
        return json.loads(src.tags()["class_names"])


def _shifted(padded: np.ndarray, di: int, dj: int, shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    return padded[1 + di : 1 + di + h, 1 + dj : 1 + dj + w]


def plurality_smooth(grid: np.ndarray, nodata: int = NODATA, iterations: int = 1) -> np.ndarray:
    """3x3 plurality (majority) filter over valid cells; pure numpy.

    Each valid cell takes the class most frequent among the valid cells of its 3x3
    neighbourhood (itself included). Ties keep the centre's class: the centre changes only
    when one other class is strictly more frequent than every other class, including the
    centre's. Nodata cells stay nodata and do not vote; the raster edge does not vote.
    """
    out = np.asarray(grid).copy()
    shape = out.shape
    for _ in range(iterations):
        valid = out != nodata
        classes = np.unique(out[valid])
        if classes.size <= 1:
            break
        padded = np.pad(out, 1, constant_values=nodata)
        counts = np.zeros((classes.size, *shape), dtype=np.int16)
        for n, k in enumerate(classes):
            is_k = padded == k
            counts[n] = sum(
                _shifted(is_k, di, dj, shape).astype(np.int16)
                for di in (-1, 0, 1)
                for dj in (-1, 0, 1)
            )
        top = counts.max(axis=0)
        winners = (counts == top).sum(axis=0)
        arg = classes[np.argmax(counts, axis=0)]
        centre_idx = np.searchsorted(classes, np.where(valid, out, classes[0]))
        centre_count = np.take_along_axis(counts, centre_idx[None], axis=0)[0]
        change = valid & (winners == 1) & (centre_count < top)
        new = np.where(change, arg, out).astype(out.dtype)
        if np.array_equal(new, out):
            break
        out = new
    return out


def class_shares(
    grid: np.ndarray, class_names: Sequence[str], nodata: int = NODATA
) -> dict[str, float]:
    """Fraction of valid (non-nodata) chips in each class, in ``class_names`` order.

    The fractions sum to 1 when there is any valid chip; all are 0 otherwise.
    """
    arr = np.asarray(grid)
    valid = arr[arr != nodata].astype(np.int64)
    if valid.size and (valid.min() < 0 or valid.max() >= len(class_names)):
        raise ValueError(f"class index {int(valid.max())} but only {len(class_names)} class names")
    counts = np.bincount(valid, minlength=len(class_names))
    total = counts.sum()
    return {
        name: (float(counts[i]) / total if total else 0.0) for i, name in enumerate(class_names)
    }
