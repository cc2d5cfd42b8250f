"""The global chip grid anchored at the origin of each CRS: pure maths, no raster is opened.

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

Which chips a set of rasters yields is :mod:`.chip_planning`'s business; reading their
pixels is :mod:`.chip_reader`'s.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from affine import Affine
from rasterio.crs import CRS

# Relative tolerance (fraction of a pixel / chip) for float coordinates, shared by planning
# and reading so both round a coordinate the same way.
EPS = 1e-6


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
        if self.stride_px is not None and (self.stride_px <= 0 or self.chip_px % self.stride_px):
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
    col_first = math.ceil(minx / size - EPS)
    col_stop = math.floor(maxx / size + EPS)
    row_first = math.ceil(-maxy / size - EPS)
    row_stop = math.floor(-miny / size + EPS)
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


class GridCell(Protocol):
    """Anything placed on the grid by ``row`` and ``col`` (a planned chip, a plan row...)."""

    @property
    def row(self) -> int: ...

    @property
    def col(self) -> int: ...


def grid_extent(chips: Iterable[GridCell]) -> tuple[int, int, int, int]:
    """``(row0, col0, n_rows, n_cols)`` of the smallest block of grid cells holding ``chips``."""
    rc = [(c.row, c.col) for c in chips]
    if not rc:
        raise ValueError("no chips")
    rows, cols = zip(*rc, strict=True)
    return min(rows), min(cols), max(rows) - min(rows) + 1, max(cols) - min(cols) + 1
