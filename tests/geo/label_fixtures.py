"""What the label tests share: the real Czech reference squares, the chip grid they were drawn on,
and small helpers drawing chips and writing label files."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
from conftest import SHARED_DATA
from shapely.geometry import Point, box

from aerial_kedro.geo.grid import ChipGrid, chip_bounds

CZECH_LABELS = SHARED_DATA / "labels" / "czech_west_labels.geojson"
GRID = ChipGrid(64, 10.0)
UTM = "EPSG:32633"
SIZE = GRID.size
# A chip of the Czech scene (row -8717, col 849) and its neighbours, in EPSG:32633.
ROW, COL = -8717, 849


def chip_box(row: int, col: int, shrink: float = 0.0):
    minx, miny, maxx, maxy = chip_bounds(row, col, SIZE)
    return box(minx + shrink, miny + shrink, maxx - shrink, maxy - shrink)


def centre(row: int, col: int) -> Point:
    minx, miny, maxx, maxy = chip_bounds(row, col, SIZE)
    return Point((minx + maxx) / 2, (miny + maxy) / 2)


def write(frame: gpd.GeoDataFrame, path: Path, **kwargs) -> Path:
    frame.to_file(path, **kwargs)
    return path
