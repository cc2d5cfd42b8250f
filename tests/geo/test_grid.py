"""The global chip grid's maths: indices, bounds, ids (no raster opened)."""

from __future__ import annotations

import rasterio

from aerial_kedro.geo.grid import ChipGrid, chip_bounds, chip_id, chip_index, chips_inside

# The real scene's bounds: 1783 x 1159 px at 10 m, EPSG:32633.
SCENE_BOUNDS = (543100.0, 5567910.0, 560930.0, 5579500.0)


def test_chip_index_and_bounds_convention():
    size = 640.0
    assert chip_index(0.0, 0.0, size) == (0, 0)
    assert chip_index(639.9, -0.1, size) == (0, 0)
    assert chip_index(640.0, -640.0, size) == (1, 1)  # edges belong to the chip east/south
    assert chip_index(-1.0, 1.0, size) == (-1, -1)
    assert chip_bounds(0, 0, size) == (0.0, -640.0, 640.0, 0.0)
    assert chip_bounds(-8717, 849, size) == (543360.0, 5578240.0, 544000.0, 5578880.0)
    for row, col in [(-8717, 849), (3, -2), (0, 0)]:
        minx, miny, maxx, maxy = chip_bounds(row, col, size)
        assert chip_index((minx + maxx) / 2, (miny + maxy) / 2, size) == (row, col)
        assert chip_index(minx, maxy, size) == (row, col)  # top-left corner is inside
    grid = ChipGrid(64, 10.0)
    assert grid.size == 640.0
    assert grid.transform_for(-8717, 849) @ (0, 0) == (543360.0, 5578880.0)
    assert grid.transform_for(-8717, 849) @ (1, 1) == (544000.0, 5578240.0)


def test_chips_inside_known_bounds():
    rows, cols = chips_inside(SCENE_BOUNDS, 640.0)
    # x: 543100/640 = 848.6 -> first full col 849; 560930/640 = 876.4 -> last full col 875
    assert (cols.start, cols.stop) == (849, 876)
    # y: -5579500/640 = -8717.97 -> first full row -8717 (its top 5578880 <= 5579500);
    # -5567910/640 = -8699.86 -> last full row -8701 (bottom 5568000 >= 5567910)
    assert (rows.start, rows.stop) == (-8717, -8700)
    # bounds exactly on chip edges are inclusive, tiny float noise is forgiven
    rows, cols = chips_inside((0.0, -1280.0, 1280.0000001, 0.0), 640.0)
    assert list(rows) == [0, 1] and list(cols) == [0, 1]
    rows, cols = chips_inside((10.0, -630.0, 630.0, -10.0), 640.0)
    assert len(rows) == 0 and len(cols) == 0


def test_chip_id_is_stable():
    assert chip_id("EPSG:32633", -8717, 849) == "32633_-8717_849"
    assert chip_id(rasterio.crs.CRS.from_epsg(32633), -8717, 849) == "32633_-8717_849"
