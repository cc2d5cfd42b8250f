"""Reading chips: pixels equal the raster window, the 2x2 split reads the same, empty chips."""

from __future__ import annotations

import time

import numpy as np
import pytest
import rasterio
from conftest import CZECH_PARTS as PARTS
from conftest import CZECH_SCENE as SCENE
from conftest import CZECH_SCENE_BOUNDS as SCENE_BOUNDS
from conftest import RASTERS

from aerial_kedro.geo.chip_planning import Chip, plan_chips_from_paths
from aerial_kedro.geo.chip_reader import ChipReader, is_empty_chip, read_chip, read_chips

pytestmark = pytest.mark.skipif(not SCENE.exists(), reason=f"test rasters not found in {RASTERS}")


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
