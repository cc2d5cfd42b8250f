"""Which chips of the global grid (:mod:`.grid`) a set of rasters yields: :func:`plan_chips`.

Mosaics, edges, geographic sources
----------------------------------
:func:`plan_chips` plans over the *union* of several rasters that share a planning CRS: a chip
is produced if at least ``1 - max_empty_fraction`` of its area lies inside the union of the
rasters' footprints (``max_empty_fraction=0``: fully inside), and it lists every raster that
overlaps it. A footprint is the raster's valid bounds (:attr:`.RasterMeta.data_bounds`: where
its dataset mask has data, see :mod:`.raster_inspection`), so a huge, mostly empty raster is
planned only where its data is. Edge chips are thus planned from geometry alone; reading
(:mod:`.chip_reader`) then decides with the pixels' valid mask whether too much of the chip is
nodata (the scoring status ``empty``). Rasters in a geographic CRS (degrees) are planned on the
UTM zone of their declared extent's centre (:func:`planning_crs`), their footprint reprojected
as a polygon, so chips stay 640 m squares.

A plan is bounded before it is enumerated: over ``max_chips`` candidate windows it is refused
with :class:`PlanTooLargeError`, one line naming the rasters.

Everything planned is plain values (:class:`Chip`, :class:`.RasterMeta`, ``to_dict``),
so chips can be shipped to Spark tasks as rows; the pixels are read on the executor.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import shapely
from rasterio.crs import CRS
from rasterio.warp import transform as warp_transform

from aerial_kedro.geo.grid import EPS, ChipGrid, crs_key
from aerial_kedro.geo.raster_inspection import (
    RasterError,
    RasterMeta,
    RasterSource,
    inspect_rasters,
)


class PlanTooLargeError(ValueError):
    """A plan over the ``max_chips`` cap, refused before any chip is enumerated."""


@dataclass(frozen=True)
class Chip:
    """One planned chip: plain values so it can travel as a Spark row (see :meth:`to_dict`)."""

    chip_id: str
    crs: str
    row: int
    col: int
    minx: float
    miny: float
    maxx: float
    maxy: float
    lon: float
    lat: float
    chip_px: int
    resolution: float
    sources: tuple[str, ...] = field(default_factory=tuple)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        return self.minx, self.miny, self.maxx, self.maxy

    @property
    def grid(self) -> ChipGrid:
        return ChipGrid(self.chip_px, self.resolution)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["sources"] = list(self.sources)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Chip:
        values = {k: data[k] for k in cls.__dataclass_fields__}
        values["sources"] = tuple(values["sources"])
        return cls(**values)


def _overlap(a: Sequence[float], b: Sequence[float]) -> tuple[float, float, float, float] | None:
    """Intersection of two ``(minx, miny, maxx, maxy)`` boxes with positive area, else None."""
    minx, miny = max(a[0], b[0]), max(a[1], b[1])
    maxx, maxy = min(a[2], b[2]), min(a[3], b[3])
    if maxx <= minx or maxy <= miny:
        return None
    return minx, miny, maxx, maxy


def box_covered(box: Sequence[float], boxes: Sequence[Sequence[float]], tol: float = 0.0) -> bool:
    """Whether the union of ``boxes`` covers ``box`` (all axis-aligned ``(minx, miny, maxx, maxy)``).

    Exact for any number of boxes: the box is cut at every edge of the clipped boxes and each
    elementary cell's centre must lie in one of them. ``tol`` forgives gaps/overhangs that small.
    """
    minx, miny, maxx, maxy = box
    clipped = []
    for b in boxes:
        c = _overlap(box, (b[0] - tol, b[1] - tol, b[2] + tol, b[3] + tol))
        if c is not None:
            clipped.append(c)
    if not clipped:
        return False
    xs = sorted({minx, maxx, *(c[0] for c in clipped), *(c[2] for c in clipped)})
    ys = sorted({miny, maxy, *(c[1] for c in clipped), *(c[3] for c in clipped)})
    for x0, x1 in zip(xs[:-1], xs[1:], strict=True):
        cx = (x0 + x1) / 2
        for y0, y1 in zip(ys[:-1], ys[1:], strict=True):
            cy = (y0 + y1) / 2
            if not any(c[0] <= cx <= c[2] and c[1] <= cy <= c[3] for c in clipped):
                return False
    return True


def utm_crs_for(lon: float, lat: float) -> str:
    """``"EPSG:326zz"`` (north) / ``"EPSG:327zz"`` (south) of the UTM zone holding ``(lon, lat)``.

    The plain 6-degree zones (the Norway/Svalbard exceptions are ignored: any zone near its
    neighbour works, the choice only has to be deterministic).
    """
    zone = min(max(math.floor((lon + 180.0) / 6.0) + 1, 1), 60)
    return f"EPSG:{32600 + zone if lat >= 0 else 32700 + zone}"


def planning_crs(meta: RasterMeta) -> str:
    """The CRS a raster's chips are planned and read in: its own, or for a geographic CRS the
    UTM zone of its declared extent's centre (the chip grid is anchored at (0, 0) of that UTM
    CRS)."""
    crs = CRS.from_user_input(meta.crs)
    if not crs.is_geographic:
        return meta.crs
    minx, miny, maxx, maxy = meta.bounds
    lons, lats = warp_transform(crs, "EPSG:4326", [(minx + maxx) / 2], [(miny + maxy) / 2])
    return utm_crs_for(lons[0], lats[0])


def footprint(meta: RasterMeta, crs: str, densify: int = 32) -> shapely.Polygon:
    """The raster's footprint in ``crs``: its valid bounds (:attr:`.RasterMeta.data_bounds`),
    reprojected edge by edge when needed."""
    minx, miny, maxx, maxy = meta.data_bounds
    if CRS.from_user_input(meta.crs) == CRS.from_user_input(crs):
        return shapely.box(minx, miny, maxx, maxy)
    steps = np.linspace(0.0, 1.0, densify + 1)[:-1]
    xs = np.concatenate([minx + (maxx - minx) * steps, np.full_like(steps, maxx),
                         maxx - (maxx - minx) * steps, np.full_like(steps, minx)])  # fmt: skip
    ys = np.concatenate([np.full_like(steps, maxy), maxy - (maxy - miny) * steps,
                         np.full_like(steps, miny), miny + (maxy - miny) * steps])  # fmt: skip
    tx, ty = warp_transform(meta.crs, crs, xs.tolist(), ys.tolist())
    return shapely.Polygon(zip(tx, ty, strict=True))


def plan_chips(
    metas: Sequence[RasterMeta],
    grid: ChipGrid | None = None,
    *,
    max_empty_fraction: float = 0.0,
    max_chips: int | None = None,
) -> list[Chip]:
    """Plan the chips covered by the union (mosaic) of the rasters' footprints.

    ``max_chips`` bounds the work before any is done: a plan whose candidate windows (the
    chips of the footprints' bounding boxes) exceed it raises :class:`PlanTooLargeError`
    (a 375-byte GeoTIFF may declare a 5,000 km extent; its valid bounds usually shrink it).

    A chip is planned when at least ``1 - max_empty_fraction`` of its area lies inside the
    union (``0``, the default: fully inside). Rasters are grouped by :func:`planning_crs`; each
    group is planned on that CRS's global grid, so chip ids never clash. Each chip lists, in
    input order, the rasters whose footprint overlaps it. Chips are returned sorted by
    ``(crs, row, col)``. Empty (nodata / black) chips are still planned: reading decides
    (:func:`.chip_reader.is_empty_chip` on the valid pixels).
    """
    if not 0.0 <= max_empty_fraction <= 1.0:
        raise ValueError(f"max_empty_fraction {max_empty_fraction} is outside [0, 1]")
    grid = grid or ChipGrid()
    size = grid.size
    groups: dict[str, list[RasterMeta]] = {}
    for meta in metas:
        groups.setdefault(planning_crs(meta), []).append(meta)
    chips: list[Chip] = []
    candidates = 0
    for crs in sorted(groups):
        group = groups[crs]
        shapes = [footprint(meta, crs) for meta in group]
        union = shapely.union_all(shapes)
        minx, miny, maxx, maxy = union.bounds
        cell, k = grid.cell_size, grid.windows_per_side
        # Windows start at every cell whose window reaches into the union's bounds.
        rows = np.arange(math.floor(-maxy / cell + EPS) - (k - 1), math.ceil(-miny / cell - EPS))
        cols = np.arange(math.floor(minx / cell + EPS) - (k - 1), math.ceil(maxx / cell - EPS))
        if not len(rows) or not len(cols):
            continue
        candidates += len(rows) * len(cols)
        if max_chips is not None and candidates > max_chips:
            raise PlanTooLargeError(
                f"the rasters span {candidates:,}+ chips of {size:g} m, more than "
                f"scoring.max_chips ({max_chips:,}): {', '.join(m.path for m in group[:3])}"
            )
        rr, cc = (a.ravel() for a in np.meshgrid(rows, cols, indexing="ij"))
        boxes = shapely.box(cc * cell, -rr * cell - size, cc * cell + size, -rr * cell)
        covered = shapely.area(shapely.intersection(boxes, union)) / (size * size)
        keep = (covered >= 1.0 - max_empty_fraction - EPS) & (covered > EPS)
        if not keep.any():
            continue
        rr, cc, boxes = rr[keep], cc[keep], boxes[keep]
        # A raster is a source of a chip when their overlap has an area (not just an edge).
        hits = np.stack(
            [
                shapely.area(shapely.intersection(boxes, shape)) > EPS * size * size
                for shape in shapes
            ]  # fmt: skip
        )
        xs, ys = cc * cell + size / 2, -rr * cell - size / 2
        lons, lats = warp_transform(crs, "EPSG:4326", xs.tolist(), ys.tolist())
        key = crs_key(crs)
        for i, (row, col) in enumerate(zip(rr.tolist(), cc.tolist(), strict=True)):
            sources = tuple(m.path for m, hit in zip(group, hits[:, i], strict=True) if hit)
            if not sources:
                continue
            bounds = grid.bounds_of(row, col)
            chips.append(
                Chip(
                    chip_id=f"{key}_{row}_{col}{grid.window_suffix}",
                    crs=crs,
                    row=row,
                    col=col,
                    minx=bounds[0],
                    miny=bounds[1],
                    maxx=bounds[2],
                    maxy=bounds[3],
                    lon=float(lons[i]),
                    lat=float(lats[i]),
                    chip_px=grid.chip_px,
                    resolution=grid.resolution,
                    sources=sources,
                )
            )
    return chips


def plan_chips_from_paths(
    paths: Iterable[RasterSource],
    grid: ChipGrid | None = None,
    *,
    opener: Callable | None = None,
    max_empty_fraction: float = 0.0,
) -> tuple[list[Chip], list[RasterError]]:
    """:func:`.inspect_rasters` then :func:`plan_chips`: ``(chips, problems)``; never raises per file."""
    metas, problems = inspect_rasters(paths, opener=opener)
    return plan_chips(metas, grid, max_empty_fraction=max_empty_fraction), problems
