"""Edge chips planned by footprint cover, and sources in a geographic CRS planned on their UTM zone."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from conftest import CZECH_SCENE as SCENE
from conftest import RASTERS, SHARED_DATA
from pyproj import Geod

from aerial_kedro.geo.band_stack import group_band_files, open_stack
from aerial_kedro.geo.chip_planning import plan_chips_from_paths, utm_crs_for
from aerial_kedro.geo.chip_reader import ChipReader
from aerial_kedro.geo.grid import ChipGrid, grid_extent
from aerial_kedro.geo.raster_inspection import RasterError, inspect_raster

PARTS = sorted(str(p) for p in (RASTERS / "czech-2x2").glob("*.tif"))
SCENE_BOUNDS = (543100.0, 5567910.0, 560930.0, 5579500.0)
OSCD = SHARED_DATA / "oscd"


def cover(chip, bounds=SCENE_BOUNDS) -> float:
    width = min(chip.maxx, bounds[2]) - max(chip.minx, bounds[0])
    height = min(chip.maxy, bounds[3]) - max(chip.miny, bounds[1])
    return max(width, 0) * max(height, 0) / (chip.maxx - chip.minx) ** 2


def test_edge_chips_half_inside_are_planned_and_the_split_agrees():
    inside, _ = plan_chips_from_paths([str(SCENE)], ChipGrid())
    edges, _ = plan_chips_from_paths([str(SCENE)], ChipGrid(), max_empty_fraction=0.5)
    assert len(inside) == 17 * 27 == 459
    assert all(cover(chip) == pytest.approx(1.0) for chip in inside)
    # The scene covers 97 % of the row north of the full ones, 41 % / 45 % / 14 % of the
    # west / east columns and the south row: with max_empty_fraction 0.5 only the north row joins.
    added = {c.chip_id for c in edges} - {c.chip_id for c in inside}
    assert len(edges) == 486 and len(added) == 27
    assert {round(cover(c), 2) for c in edges if c.chip_id in added} == {0.97}
    assert grid_extent(edges) == (-8718, 849, 18, 27)
    split, _ = plan_chips_from_paths(PARTS, ChipGrid(), max_empty_fraction=0.5)
    assert [c.chip_id for c in split] == [c.chip_id for c in edges]


def test_edge_chip_reads_its_valid_part_and_pads_the_rest():
    chips, _ = plan_chips_from_paths([str(SCENE)], ChipGrid(), max_empty_fraction=0.5)
    edge = next(c for c in chips if cover(c) < 1)
    with ChipReader() as reader:
        pixels, valid = reader.read_with_mask(edge)
    assert valid.mean() == pytest.approx(cover(edge), abs=1 / 64)
    assert not valid[0].any() and valid[-1].all()  # the missing strip is the chip's north
    assert (pixels[~valid] == 0).all() and pixels[valid].mean() > 20


@pytest.mark.parametrize(
    ("lon", "lat", "crs"),
    [(10.4, 43.7, "EPSG:32632"), (54.57, 24.33, "EPSG:32640"), (-115.24, 36.02, "EPSG:32611"),
     (-70.6, -33.4, "EPSG:32719"), (180.0, 0.0, "EPSG:32660"), (-180.0, -1.0, "EPSG:32701")],
)  # fmt: skip
def test_utm_zone_of_a_point(lon, lat, crs):
    assert utm_crs_for(lon, lat) == crs


@pytest.mark.parametrize(
    ("city", "epsg"), [("pisa", 32632), ("abudhabi", 32640), ("lasvegas", 32611)]
)
def test_geographic_source_is_planned_on_its_utm_zone_where_it_lies(city, epsg):
    stacks, _ = group_band_files(sorted(str(p) for p in (OSCD / city / "imgs_1").glob("*.tif")))
    with rasterio.open(next((OSCD / city / "imgs_1").glob("*B04*.tif"))) as band:
        west, south, east, north = band.bounds
    chips, problems = plan_chips_from_paths(stacks, ChipGrid(), max_empty_fraction=0.5)
    assert not problems and len(chips) > 100
    assert {c.crs for c in chips} == {f"EPSG:{epsg}"}
    assert all(c.chip_id.startswith(f"{epsg}_") for c in chips)
    lons, lats = np.array([c.lon for c in chips]), np.array([c.lat for c in chips])
    assert west < lons.min() and lons.max() < east and south < lats.min() and lats.max() < north
    # The chips span (nearly) the footprint: the whole width and height, less under a chip.
    geod = Geod(ellps="WGS84")
    width = geod.inv(west, (south + north) / 2, east, (south + north) / 2)[2]
    _, col0, n_rows, n_cols = grid_extent(chips)
    assert width - 640 * 1.5 < n_cols * 640 < width + 640
    # Every chip is a 640 m square anchored on the UTM grid at (0, 0).
    assert all(c.minx % 640 == 0 and c.maxy % 640 == 0 and c.maxx - c.minx == 640 for c in chips)


def test_geographic_chip_pixels_are_the_source_warped():
    stacks, _ = group_band_files(sorted(str(p) for p in (OSCD / "pisa" / "imgs_1").glob("*.tif")))
    chips, _ = plan_chips_from_paths(stacks, ChipGrid(), max_empty_fraction=0.5)
    middle = chips[len(chips) // 2]
    with ChipReader() as reader:
        pixels, valid = reader.read_with_mask(middle)
    assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint16 and valid.all()
    with open_stack(stacks[0]) as stack:
        row, col = stack.index(middle.lon, middle.lat)
        source = stack.read(window=((row - 30, row + 30), (col - 30, col + 30)))
    # Same ground, resampled (8.7 m x 12 m degrees -> 10 m): the means agree within a few %.
    np.testing.assert_allclose(
        pixels.reshape(-1, 3).mean(axis=0), source.reshape(3, -1).mean(axis=1), rtol=0.08
    )
    edge = chips[0]
    with ChipReader() as reader:
        _, edge_valid = reader.read_with_mask(edge)
    assert 0.5 <= edge_valid.mean() < 1.0


def test_geographic_refusal_only_on_request():
    stacks, _ = group_band_files(sorted(str(p) for p in (OSCD / "pisa" / "imgs_1").glob("*.tif")))
    assert inspect_raster(stacks[0]).crs == "EPSG:4326"
    with pytest.raises(RasterError, match="geographic CRS"):
        inspect_raster(stacks[0], allow_geographic=False)
