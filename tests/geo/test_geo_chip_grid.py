"""Chip-grid maths, planning over real rasters, the 2x2 split equivalence and empty chips."""

from __future__ import annotations

import os
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio

from aerial_kedro.geo.chip_grid import (
    Chip,
    ChipGrid,
    ChipReader,
    RasterMeta,
    box_covered,
    chip_bounds,
    chip_id,
    chip_index,
    chips_inside,
    grid_extent,
    inspect_raster,
    is_empty_chip,
    plan_chips,
    plan_chips_from_paths,
    read_chip,
    read_chips,
)

DATA = Path(os.environ.get("AERIAL_DATA_DIR", Path(__file__).parents[2] / ".." / "shared" / "data"))
RASTERS = DATA / "rasters"
SCENE = RASTERS / "czech_s2_tci_20220319.tif"
PARTS = sorted((RASTERS / "czech-2x2").glob("*.tif"))

pytestmark = pytest.mark.skipif(not SCENE.exists(), reason=f"test rasters not found in {RASTERS}")

# The scene: 1783 x 1159 px at 10 m, EPSG:32633.
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


def test_box_covered_union():
    box = (0, 0, 10, 10)
    assert box_covered(box, [(0, 0, 5, 10), (5, 0, 10, 10)])
    assert box_covered(box, [(0, 0, 10, 5), (0, 5, 6, 10), (4, 4, 12, 12)])
    assert not box_covered(box, [(0, 0, 5, 10), (5, 0, 10, 9)])
    assert not box_covered(box, [(0, 0, 5, 5), (5, 5, 10, 10)])  # diagonal only
    assert not box_covered(box, [])


@pytest.fixture(scope="module")
def scene_chips() -> list[Chip]:
    chips, problems = plan_chips_from_paths([str(SCENE)])
    assert problems == []
    return chips


def test_plan_whole_scene(scene_chips):
    assert len(scene_chips) == 17 * 27
    ids = [c.chip_id for c in scene_chips]
    assert len(set(ids)) == len(ids)
    left, bottom, right, top = SCENE_BOUNDS
    for c in scene_chips:
        assert c.chip_id == f"32633_{c.row}_{c.col}"
        assert (c.minx, c.miny, c.maxx, c.maxy) == chip_bounds(c.row, c.col, 640.0)
        assert left <= c.minx and c.maxx <= right and bottom <= c.miny and c.maxy <= top
        assert 15.6 < c.lon < 15.86 and 50.26 < c.lat < 50.37
        assert c.sources == (str(SCENE),)
    assert grid_extent(scene_chips) == (-8717, 849, 17, 27)
    # stable: planning again gives the same chips; chips travel as plain dicts / pickles
    again, _ = plan_chips_from_paths([str(SCENE)])
    assert again == scene_chips
    first = scene_chips[0]
    assert Chip.from_dict(first.to_dict()) == first
    assert pickle.loads(pickle.dumps(first)) == first
    assert all(isinstance(v, (str, int, float, list)) for v in first.to_dict().values())


def test_chip_pixels_match_the_raster_window(scene_chips):
    with rasterio.open(SCENE) as ds:
        full = ds.read()
    chip = scene_chips[40]
    col_off = round((chip.minx - SCENE_BOUNDS[0]) / 10)
    row_off = round((SCENE_BOUNDS[3] - chip.maxy) / 10)
    expected = np.moveaxis(full[:, row_off : row_off + 64, col_off : col_off + 64], 0, -1)
    pixels = read_chip(chip)
    assert pixels.shape == (64, 64, 3) and pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels, expected)


def test_split_2x2_gives_identical_chips(scene_chips):
    assert len(PARTS) == 4
    split_chips, problems = plan_chips_from_paths([str(p) for p in PARTS])
    assert problems == []
    assert [c.chip_id for c in split_chips] == [c.chip_id for c in scene_chips]
    # chips straddling the part boundaries draw on 2 or 4 parts
    n_sources = {c.chip_id: len(c.sources) for c in split_chips}
    assert max(n_sources.values()) == 4
    assert sum(n > 1 for n in n_sources.values()) > 30

    t0 = time.perf_counter()
    with ChipReader() as reader:
        whole = {c.chip_id: reader.read(c) for c in scene_chips}
    t1 = time.perf_counter()
    with ChipReader() as reader:
        split = {c.chip_id: reader.read(c) for c in split_chips}
    t2 = time.perf_counter()
    print(f"read {len(whole)} chips: whole {t1 - t0:.3f} s, 2x2 split {t2 - t1:.3f} s")
    for key, pixels in whole.items():
        np.testing.assert_array_equal(split[key], pixels, err_msg=key)


def test_partial_mosaic_only_plans_covered_chips(scene_chips):
    # parts 0 (NW) and 3 (SE) touch only at a corner: no chip may straddle into 1 or 2
    diagonal, _ = plan_chips_from_paths([str(PARTS[0]), str(PARTS[3])])
    metas = [inspect_raster(str(p)) for p in (PARTS[0], PARTS[3])]
    for c in diagonal:
        assert len(c.sources) == 1
        b = next(m.bounds for m in metas if m.path == c.sources[0])
        assert b[0] <= c.minx and c.maxx <= b[2] and b[1] <= c.miny and c.maxy <= b[3]
    whole_ids = {c.chip_id for c in scene_chips}
    assert {c.chip_id for c in diagonal} < whole_ids


def test_plan_groups_by_crs():
    meta = inspect_raster(str(SCENE))
    other = RasterMeta(**{**meta.to_dict(), "path": "other.tif", "crs": "EPSG:32634"})
    assert RasterMeta.from_dict(meta.to_dict()) == meta
    chips = plan_chips([meta, RasterMeta.from_dict(other.to_dict())])
    assert {c.crs for c in chips} == {"EPSG:32633", "EPSG:32634"}
    assert len(chips) == 2 * 17 * 27
    assert {c.chip_id.split("_")[0] for c in chips} == {"32633", "32634"}


def test_remote_style_paths_are_passed_to_rasterio():
    # a GDAL virtual path: never checked with os.path, opened by rasterio/GDAL
    vsi = f"/vsisubfile/0_{SCENE.stat().st_size},{SCENE}"
    meta = inspect_raster(vsi)
    assert meta.path == vsi and meta.crs == "EPSG:32633"
    chips = plan_chips([meta])
    np.testing.assert_array_equal(
        read_chip(chips[0]), read_chip(plan_chips_from_paths([str(SCENE)])[0][0])
    )


def test_fsspec_opener():
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("file")
    meta = inspect_raster(str(SCENE), opener=fs.open)
    chip = plan_chips([meta])[0]
    np.testing.assert_array_equal(read_chip(chip, opener=fs.open), read_chip(chip))


def test_is_empty_chip():
    rng = np.random.default_rng(1)
    pixels = rng.integers(1, 255, (64, 64, 3), dtype=np.uint8)
    assert not is_empty_chip(pixels)
    black = np.zeros((64, 64, 3), np.uint8)
    assert is_empty_chip(black)
    mostly = black.copy()
    mostly[:2, :2] = 100  # 4 of 4096 pixels: still > 99 % empty
    assert is_empty_chip(mostly)
    half = black.copy()
    half[:32] = 100
    assert not is_empty_chip(half)
    dark_red = black.copy()
    dark_red[..., 0] = 20  # not black: one band is non-zero
    assert not is_empty_chip(dark_red)
    assert is_empty_chip(np.full((64, 64, 3), 7, np.uint8), nodata=7)
    assert is_empty_chip(np.full((64, 64), np.nan, np.float32), nodata=float("nan"))


def test_read_chips_marks_uncovered_pixels(tmp_path, scene_chips):
    # a source with nodata: its nodata pixels are not valid, the next source fills them
    chip = scene_chips[0]
    with rasterio.open(SCENE) as ds:
        profile = ds.profile | {"driver": "GTiff", "compress": "deflate", "nodata": 0}
        profile.pop("photometric", None)
        data = ds.read()
    holes = data.copy()
    holes[:, :100, :60] = 0  # covers the chip's top-left corner only
    holed = tmp_path / "holes.tif"
    with rasterio.open(holed, "w", **profile) as dst:
        dst.write(holes)
    only_holes = Chip.from_dict({**chip.to_dict(), "sources": [str(holed)]})
    with ChipReader() as reader:
        pixels, valid = reader.read_with_mask(only_holes)
        assert not valid.all() and valid.any()
        assert is_empty_chip(pixels) == (valid.mean() < 0.01)
        both = Chip.from_dict({**chip.to_dict(), "sources": [str(holed), str(SCENE)]})
        pixels, valid = reader.read_with_mask(both)
        assert valid.all()
    np.testing.assert_array_equal(pixels, read_chip(chip))
    assert [c.chip_id for c, _ in read_chips(scene_chips[:3])] == [
        c.chip_id for c in scene_chips[:3]
    ]
