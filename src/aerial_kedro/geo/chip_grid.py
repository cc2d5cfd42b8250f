"""A chip grid anchored to a global grid in each raster's CRS, planning and reading chips.

Grid convention
---------------
A chip is ``chip_px`` x ``chip_px`` pixels at ``resolution`` CRS units per pixel, so its
ground size is ``size = chip_px * resolution`` (64 px * 10 m = 640 m). The grid is anchored
at the CRS origin (0, 0), independent of any raster:

* ``col = floor(x / size)``  - columns count eastward from x = 0;
* ``row = floor(-y / size)`` - rows count southward from y = 0, like image rows.

Chip ``(row, col)`` covers ``x in [col * size, (col + 1) * size]`` and
``y in [-(row + 1) * size, -row * size]``. North of the equator (UTM north zones) the
row numbers are therefore negative. Because the grid does not depend on a raster's
origin, the same ground square always gets the same id, ``f"{crs_key}_{row}_{col}"``
(``crs_key`` is the EPSG code, e.g. ``"32633_-8717_849"``), whichever raster it is read
from. A class map with one pixel per chip is then a plain array indexed by
``(row - row0, col - col0)`` with the transform of :meth:`ChipGrid.transform_for`.

Mosaics, edges, geographic sources
----------------------------------
:func:`plan_chips` plans over the *union* of several rasters that share a planning CRS: a chip
is produced if at least ``1 - max_empty_fraction`` of its area lies inside the union of the
rasters' footprints (``max_empty_fraction=0``: fully inside), and it lists every raster that
overlaps it. Edge chips are thus planned from geometry alone; reading then decides with the
pixels' valid mask whether too much of the chip is nodata (the scoring status ``empty``).
Rasters in a geographic CRS (degrees) are planned on the UTM zone of their footprint's centre
(:func:`planning_crs`), their footprint reprojected as a polygon, so chips stay 640 m squares. :class:`ChipReader` reads the chip's ground window from each of
those rasters and mosaics them (the first raster listed wins where they overlap), so a
scene split into tiles gives the same chips, pixel for pixel, as the whole scene. Rasters
whose pixel grid is not aligned with the target grid (another resolution, a shifted
origin or another CRS) are read through a ``WarpedVRT`` that resamples them onto it.

Everything planned is plain values (:class:`Chip`, :class:`RasterMeta`, ``to_dict``),
so chips can be shipped to Spark tasks as rows; the pixels are read on the executor.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import MaskFlags, Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform as warp_transform
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from aerial_kedro.geo.band_stack import is_stack_uri, open_stack
from aerial_kedro.geo.raster_access import open_raster

# Relative tolerance (fraction of a pixel / chip) for float coordinates.
_EPS = 1e-6

RasterSource = Any  # a path string / PathLike accepted by rasterio.open


class PlanTooLargeError(ValueError):
    """A plan over the ``max_chips`` cap, refused before any chip is enumerated."""


class RasterError(Exception):
    """A raster that cannot be used: unreadable, not georeferenced, too few bands..."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return f"raster {self.path!r}: {self.reason}"


@dataclass(frozen=True)
class ChipGrid:
    """The global chip grid: ``chip_px`` pixels of ``resolution`` CRS units per chip side.

    ``stride_px`` (default ``chip_px``) below ``chip_px`` makes chips overlapping windows: the
    ground is cut into *cells* of ``stride_px`` pixels, a window covers ``k x k`` cells
    (``k = chip_px / stride_px``, which must be a whole number) and starts at every cell, so
    each cell is seen by ``k**2`` windows. Window ``(row, col)`` is the one whose top-left cell
    is cell ``(row, col)`` of the cell grid (anchored at (0, 0) like the chip grid); with the
    default stride, cells are chips and nothing changes.
    """

    chip_px: int = 64
    resolution: float = 10.0
    stride_px: int | None = None

    def __post_init__(self) -> None:
        if self.chip_px <= 0 or not self.resolution > 0:
            raise ValueError(f"invalid chip grid {self.chip_px} px x {self.resolution}")
        if self.stride_px is not None and (
            self.stride_px <= 0 or self.chip_px % self.stride_px
        ):
            raise ValueError(
                f"chip stride {self.stride_px} px must divide the chip size {self.chip_px} px"
            )

    @property
    def size(self) -> float:
        """Chip side on the ground, in CRS units (metres for UTM)."""
        return self.chip_px * self.resolution

    @property
    def stride(self) -> int:
        """Pixels between neighbouring windows (= ``chip_px`` unless overlapping)."""
        return self.stride_px or self.chip_px

    @property
    def overlapping(self) -> bool:
        return self.stride != self.chip_px

    @property
    def cell_size(self) -> float:
        """Side of a cell, the unit of the map, in CRS units (= :attr:`size` by default)."""
        return self.stride * self.resolution

    @property
    def windows_per_side(self) -> int:
        """``k``: cells per window side; every cell lies in ``k**2`` windows."""
        return self.chip_px // self.stride

    def index_of(self, x: float, y: float) -> tuple[int, int]:
        """``(row, col)`` of the chip containing the point ``(x, y)`` (non-overlapping grid)."""
        return chip_index(x, y, self.size)

    def bounds_of(self, row: int, col: int) -> tuple[float, float, float, float]:
        """``(minx, miny, maxx, maxy)`` of chip (window) ``(row, col)``."""
        cell, size = self.cell_size, self.size
        return col * cell, -row * cell - size, col * cell + size, -row * cell

    def cell_bounds(self, row: int, col: int) -> tuple[float, float, float, float]:
        """``(minx, miny, maxx, maxy)`` of cell ``(row, col)``."""
        return chip_bounds(row, col, self.cell_size)

    @property
    def window_suffix(self) -> str:
        """Suffix of window ids, ``_s<stride>`` when overlapping (the same row and column then
        name another square on the ground), else empty: ids stay :func:`chip_id`'s."""
        return f"_s{self.stride}" if self.overlapping else ""

    @property
    def cell_suffix(self) -> str:
        """Suffix of cell ids, ``_c<stride>`` when overlapping, else empty (cells are chips)."""
        return f"_c{self.stride}" if self.overlapping else ""

    def transform_for(self, row0: int, col0: int) -> Affine:
        """Transform of a raster with one pixel per cell whose top-left pixel is ``(row0, col0)``."""
        return grid_transform(row0, col0, self.cell_size)

    def chips_inside(self, bounds: tuple[float, float, float, float]) -> tuple[range, range]:
        """``(rows, cols)`` ranges of the chips fully inside ``(minx, miny, maxx, maxy)``."""
        return chips_inside(bounds, self.size)


def chip_index(x: float, y: float, size: float) -> tuple[int, int]:
    """``(row, col)`` of the chip of side ``size`` containing ``(x, y)``: ``floor(-y/size), floor(x/size)``."""
    return math.floor(-y / size), math.floor(x / size)


def chip_bounds(row: int, col: int, size: float) -> tuple[float, float, float, float]:
    """``(minx, miny, maxx, maxy)`` of chip ``(row, col)`` on the grid of side ``size``."""
    return col * size, -(row + 1) * size, (col + 1) * size, -row * size


def grid_transform(row0: int, col0: int, size: float) -> Affine:
    """Affine transform of a one-pixel-per-chip raster whose top-left pixel is chip ``(row0, col0)``."""
    return Affine(size, 0.0, col0 * size, 0.0, -size, -row0 * size)


def chips_inside(bounds: tuple[float, float, float, float], size: float) -> tuple[range, range]:
    """Rows and columns of the chips lying fully inside ``bounds`` (may be empty ranges)."""
    minx, miny, maxx, maxy = bounds
    col_first = math.ceil(minx / size - _EPS)
    col_stop = math.floor(maxx / size + _EPS)
    row_first = math.ceil(-maxy / size - _EPS)
    row_stop = math.floor(-miny / size + _EPS)
    return range(row_first, max(row_first, row_stop)), range(col_first, max(col_first, col_stop))


def crs_key(crs: CRS | str) -> str:
    """Short stable key of a CRS for chip ids: the EPSG code, else a hash of its WKT."""
    crs = CRS.from_user_input(crs)
    epsg = crs.to_epsg()
    if epsg is not None:
        return str(epsg)
    return "crs" + hashlib.sha1(crs.to_wkt().encode()).hexdigest()[:10]


def crs_string(crs: CRS | str) -> str:
    """``"EPSG:nnnn"`` when the CRS has an EPSG code, else its WKT (round-trips via CRS.from_user_input)."""
    crs = CRS.from_user_input(crs)
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg is not None else crs.to_wkt()


def chip_id(crs: CRS | str, row: int, col: int) -> str:
    """Stable chip id ``f"{crs_key}_{row}_{col}"``, e.g. ``"32633_-8717_849"``."""
    return f"{crs_key(crs)}_{row}_{col}"


# --------------------------------------------------------------------------- rasters


@dataclass(frozen=True)
class RasterMeta:
    """What planning needs to know about one raster (plain values, picklable)."""

    path: str
    crs: str
    width: int
    height: int
    count: int
    dtype: str
    nodata: float | None
    transform: tuple[float, float, float, float, float, float]
    bounds: tuple[float, float, float, float]

    @property
    def res(self) -> tuple[float, float]:
        a, _, _, _, e, _ = self.transform
        return abs(a), abs(e)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["transform"] = list(self.transform)
        data["bounds"] = list(self.bounds)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RasterMeta:
        values = dict(data)
        values["transform"] = tuple(float(v) for v in values["transform"])
        values["bounds"] = tuple(float(v) for v in values["bounds"])
        return cls(**values)


def _open(path: RasterSource, opener: Callable | None = None) -> rasterio.DatasetReader:
    if is_stack_uri(path):  # one file per band: a VRT stacking them (geo.band_stack)
        return open_stack(path)
    return open_raster(path, opener)


def inspect_raster(
    path: RasterSource,
    *,
    min_bands: int = 3,
    allow_geographic: bool = True,
    opener: Callable | None = None,
) -> RasterMeta:
    """Read a raster's georeferencing; raise :class:`RasterError` if it cannot be chipped.

    ``path`` is passed to ``rasterio.open`` unchanged, so GDAL paths such as ``/vsiaz/...``
    or ``/vsicurl/...`` work; ``opener`` (e.g. ``fsspec_filesystem.open``) is passed on too.
    A ``stack:[...]`` string (:mod:`.band_stack`) is opened as the VRT of its band files.
    Geographic CRSs are accepted (planned on their UTM zone) unless ``allow_geographic=False``.
    """
    name = str(path)
    try:
        with _open(path, opener) as ds:
            crs, transform = ds.crs, ds.transform
            meta = RasterMeta(
                path=name,
                crs=crs_string(crs) if crs else "",
                width=ds.width,
                height=ds.height,
                count=ds.count,
                dtype=ds.dtypes[0],
                nodata=None if ds.nodata is None else float(ds.nodata),
                transform=tuple(transform)[:6],
                bounds=tuple(ds.bounds),
            )
    except RasterError:
        raise
    except Exception as exc:  # rasterio/GDAL raise several types for unreadable files
        raise RasterError(
            name, f"cannot be opened as a raster ({type(exc).__name__}: {exc})"
        ) from exc
    if not crs:
        raise RasterError(name, "has no CRS (not georeferenced); cannot place it on the chip grid")
    if transform.is_identity:
        raise RasterError(name, "has no geotransform (not georeferenced)")
    if transform.b != 0 or transform.d != 0:
        raise RasterError(name, "has a rotated/sheared geotransform, which is not supported")
    if CRS.from_user_input(meta.crs).is_geographic and not allow_geographic:
        raise RasterError(
            name, f"has a geographic CRS ({meta.crs}, degrees); reproject it to a projected CRS"
        )
    if meta.count < min_bands:
        raise RasterError(name, f"has {meta.count} band(s), {min_bands} needed")
    return meta


def inspect_rasters(
    paths: Iterable[RasterSource],
    *,
    min_bands: int = 3,
    allow_geographic: bool = True,
    opener: Callable | None = None,
) -> tuple[list[RasterMeta], list[RasterError]]:
    """Inspect every raster; never raises for a bad file: returns ``(ok_metas, problems)``."""
    metas: list[RasterMeta] = []
    problems: list[RasterError] = []
    for path in paths:
        try:
            metas.append(
                inspect_raster(
                    path, min_bands=min_bands, allow_geographic=allow_geographic, opener=opener
                )
            )
        except RasterError as err:
            problems.append(err)
    return metas, problems


# --------------------------------------------------------------------------- planning


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
    UTM zone of its footprint's centre (the chip grid is anchored at (0, 0) of that UTM CRS)."""
    crs = CRS.from_user_input(meta.crs)
    if not crs.is_geographic:
        return meta.crs
    minx, miny, maxx, maxy = meta.bounds
    lons, lats = warp_transform(crs, "EPSG:4326", [(minx + maxx) / 2], [(miny + maxy) / 2])
    return utm_crs_for(lons[0], lats[0])


def footprint(meta: RasterMeta, crs: str, densify: int = 32) -> shapely.Polygon:
    """The raster's footprint in ``crs``: its bounds, reprojected edge by edge when needed."""
    minx, miny, maxx, maxy = meta.bounds
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
    (a 375-byte GeoTIFF may declare a 5,000 km extent).

    A chip is planned when at least ``1 - max_empty_fraction`` of its area lies inside the
    union (``0``, the default: fully inside). Rasters are grouped by :func:`planning_crs`; each
    group is planned on that CRS's global grid, so chip ids never clash. Each chip lists, in
    input order, the rasters whose footprint overlaps it. Chips are returned sorted by
    ``(crs, row, col)``. Empty (nodata / black) chips are still planned: reading decides
    (:func:`is_empty_chip` on the valid pixels).
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
        rows = np.arange(
            math.floor(-maxy / cell + _EPS) - (k - 1), math.ceil(-miny / cell - _EPS)
        )
        cols = np.arange(math.floor(minx / cell + _EPS) - (k - 1), math.ceil(maxx / cell - _EPS))
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
        keep = (covered >= 1.0 - max_empty_fraction - _EPS) & (covered > _EPS)
        if not keep.any():
            continue
        rr, cc, boxes = rr[keep], cc[keep], boxes[keep]
        # A raster is a source of a chip when their overlap has an area (not just an edge).
        hits = np.stack(
            [
                shapely.area(shapely.intersection(boxes, shape)) > _EPS * size * size
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
    """:func:`inspect_rasters` then :func:`plan_chips`: ``(chips, problems)``; never raises per file."""
    metas, problems = inspect_rasters(paths, opener=opener)
    return plan_chips(metas, grid, max_empty_fraction=max_empty_fraction), problems


def grid_extent(chips: Iterable[Chip]) -> tuple[int, int, int, int]:
    """``(row0, col0, n_rows, n_cols)`` of the smallest block of grid cells holding ``chips``."""
    rc = [(c.row, c.col) for c in chips]
    if not rc:
        raise ValueError("no chips")
    rows, cols = zip(*rc, strict=True)
    return min(rows), min(cols), max(rows) - min(rows) + 1, max(cols) - min(cols) + 1


# --------------------------------------------------------------------------- reading


def _is_aligned(ds: rasterio.DatasetReader, crs: CRS, res: float) -> bool:
    """Whether the dataset's pixels coincide with the target grid's pixels (plain window reads)."""
    t = ds.transform
    tol = _EPS
    return (
        ds.crs == crs
        and t.b == 0
        and t.d == 0
        and abs(t.a - res) <= tol * res
        and abs(t.e + res) <= tol * res
        and abs(t.c / res - round(t.c / res)) <= tol
        and abs(t.f / res - round(t.f / res)) <= tol
    )


def _aligned_vrt(
    ds: rasterio.DatasetReader, crs: CRS, res: float, resampling: Resampling
) -> WarpedVRT:
    """A WarpedVRT of ``ds`` on the target pixel grid (pixel edges at multiples of ``res``)."""
    left, bottom, right, top = transform_bounds(ds.crs, crs, *ds.bounds)
    x0 = math.floor(left / res + _EPS) * res
    x1 = math.ceil(right / res - _EPS) * res
    y0 = math.floor(bottom / res + _EPS) * res
    y1 = math.ceil(top / res - _EPS) * res
    kwargs: dict[str, Any] = {}
    if ds.nodata is None:
        kwargs["add_alpha"] = True  # mark pixels outside the source as invalid
    return WarpedVRT(
        ds,
        crs=crs,
        transform=Affine(res, 0.0, x0, 0.0, -res, y1),
        width=round((x1 - x0) / res),
        height=round((y1 - y0) / res),
        resampling=resampling,
        **kwargs,
    )


def _default_resampling(ds: rasterio.DatasetReader, crs: CRS, res: float) -> Resampling:
    """``average`` when the source is finer than the target grid, else ``bilinear``."""
    left, bottom, right, top = transform_bounds(ds.crs, crs, *ds.bounds)
    src_res = min((right - left) / ds.width, (top - bottom) / ds.height)
    return Resampling.average if src_res < res * (1 - _EPS) else Resampling.bilinear


class ChipReader:
    """Reads chips' pixels, keeping the sources open between chips (use one per Spark partition).

    ``read(chip)`` returns ``(chip_px, chip_px, bands)`` (height, width, channel - like a
    decoded EuroSAT JPEG) in the sources' dtype (band stacks are always read as R, G, B). Pixels no source covers (or that are
    nodata in every source) are the first source's nodata value, else 0.

    Sources off the target pixel grid are resampled with ``resampling``; by default
    (``None``) ``average`` for finer sources (e.g. 5 m -> 10 m) and ``bilinear`` otherwise.
    Sources on the grid are read as they are, without resampling.
    """

    def __init__(
        self,
        bands: Sequence[int] = (1, 2, 3),
        resampling: Resampling | None = None,
        opener: Callable | None = None,
    ) -> None:
        self.bands = list(bands)
        self.resampling = resampling
        self.opener = opener
        self._datasets: dict[str, rasterio.DatasetReader] = {}
        self._views: dict[tuple[str, str, float], Any] = {}

    def __enter__(self) -> ChipReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for view in self._views.values():
            if isinstance(view, WarpedVRT):
                view.close()
        for ds in self._datasets.values():
            ds.close()
        self._views.clear()
        self._datasets.clear()

    def _view(self, path: str, crs: CRS, res: float) -> Any:
        """The source as a dataset whose pixel grid is the target grid (itself if aligned)."""
        key = (path, crs.to_wkt(), res)
        if key not in self._views:
            if path not in self._datasets:
                try:
                    self._datasets[path] = _open(path, self.opener)
                except Exception as exc:
                    raise RasterError(path, f"cannot be opened for reading ({exc})") from exc
            ds = self._datasets[path]
            if _is_aligned(ds, crs, res):
                self._views[key] = ds
            else:
                method = self.resampling
                if method is None:  # not `or`: Resampling.nearest is 0
                    method = _default_resampling(ds, crs, res)
                self._views[key] = _aligned_vrt(ds, crs, res, method)
        return self._views[key]

    def read_with_mask(self, chip: Chip) -> tuple[np.ndarray, np.ndarray]:
        """``(pixels HWC, valid HxW bool)``: the mosaic of the chip's sources and where it has data."""
        crs = CRS.from_user_input(chip.crs)
        res, n = chip.resolution, chip.chip_px
        out: np.ndarray | None = None
        filled = np.zeros((n, n), dtype=bool)
        for path in chip.sources:
            view = self._view(path, crs, res)
            t = view.transform
            col_off = round((chip.minx - t.c) / res)
            row_off = round((t.f - chip.maxy) / res)
            c0, r0 = max(col_off, 0), max(row_off, 0)
            c1, r1 = min(col_off + n, view.width), min(row_off + n, view.height)
            if c1 <= c0 or r1 <= r0:
                continue
            window = Window(c0, r0, c1 - c0, r1 - r0)
            try:
                # A band stack is R, G, B by construction; other sources use `bands`.
                bands = [1, 2, 3] if is_stack_uri(path) else self.bands
                data = view.read(bands, window=window)
                if all(MaskFlags.all_valid in flags for flags in view.mask_flag_enums):
                    valid = np.ones(data.shape[1:], dtype=bool)
                else:
                    valid = view.dataset_mask(window=window) > 0
            except Exception as exc:
                raise RasterError(path, f"reading chip {chip.chip_id} failed ({exc})") from exc
            if out is None:
                fill = view.nodata if view.nodata is not None else 0
                out = np.full((len(self.bands), n, n), fill, dtype=data.dtype)
            rows = slice(r0 - row_off, r1 - row_off)
            cols = slice(c0 - col_off, c1 - col_off)
            write = valid & ~filled[rows, cols]
            out[:, rows, cols][:, write] = data[:, write]
            filled[rows, cols] |= valid
            if filled.all():
                break
        if out is None:
            raise ValueError(f"chip {chip.chip_id} has no source overlapping it")
        return np.moveaxis(out, 0, -1), filled

    def read(self, chip: Chip) -> np.ndarray:
        """The chip's pixels, ``(chip_px, chip_px, bands)``."""
        return self.read_with_mask(chip)[0]


def read_chip(
    chip: Chip,
    bands: Sequence[int] = (1, 2, 3),
    resampling: Resampling | None = None,
    opener: Callable | None = None,
) -> np.ndarray:
    """Read one chip (opens and closes its sources; prefer :class:`ChipReader` for many chips)."""
    with ChipReader(bands, resampling, opener) as reader:
        return reader.read(chip)


def read_chips(
    chips: Iterable[Chip],
    bands: Sequence[int] = (1, 2, 3),
    resampling: Resampling | None = None,
    opener: Callable | None = None,
) -> Iterator[tuple[Chip, np.ndarray]]:
    """Yield ``(chip, pixels)`` for each chip, sharing open sources between chips."""
    with ChipReader(bands, resampling, opener) as reader:
        for chip in chips:
            yield chip, reader.read(chip)


def is_empty_chip(
    pixels: np.ndarray,
    nodata: float | None = None,
    max_empty_fraction: float = 0.99,
) -> bool:
    """Whether a chip is (almost) all nodata or black: skip it rather than classify it.

    A pixel (``pixels`` is HWC, or HW for one band) is empty when all its bands are 0 or all
    equal ``nodata``. The chip is empty when more than ``max_empty_fraction`` of it is.
    """
    arr = np.asarray(pixels)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.size == 0:
        return True
    empty = np.all(arr == 0, axis=-1)
    if nodata is not None:
        if isinstance(nodata, float) and math.isnan(nodata):
            empty |= np.all(np.isnan(arr), axis=-1)
        else:
            empty |= np.all(arr == nodata, axis=-1)
    return float(empty.mean()) > max_empty_fraction
