"""Source imagery read onto a grid: RGB layers of band files, previews with a stretch or the run's radiometry."""

from __future__ import annotations

import json

import numpy as np
from affine import Affine
from conftest import RASTERS, SHARED_DATA

from aerial_kedro.geo.preview import read_preview, rgb_layers, source_files

PISA_AFTER = SHARED_DATA / "oscd" / "pisa" / "imgs_2"


def pisa_bands() -> dict[str, str]:
    files = {p.stem[-3:]: str(p) for p in PISA_AFTER.glob("*.tif")}
    return {"red": files["B04"], "green": files["B03"], "blue": files["B02"]}


def test_per_band_files_and_band_stacks_make_one_rgb_layer():
    bands = pisa_bands()
    folder = sorted(str(p) for p in PISA_AFTER.glob("*.tif"))
    expected = [[(bands["red"], 1), (bands["green"], 1), (bands["blue"], 1)]]
    assert rgb_layers(folder) == expected
    stack = "stack:" + json.dumps([bands["red"], bands["green"], bands["blue"]])
    assert rgb_layers([stack]) == expected
    assert source_files(stack) == [bands["red"], bands["green"], bands["blue"]]
    scene = str(RASTERS / "czech_s2_tci_20220319.tif")
    assert rgb_layers([scene]) == [[(scene, 1), (scene, 2), (scene, 3)]]


def test_uint16_reflectance_is_stretched_and_reprojected_to_the_chip_grid():
    # Pisa's chips in UTM 32N: the 4 x 4 chip block of rows -7567.., cols 955.. (centre of the
    # EPSG:4326 scene).
    transform = Affine(40.0, 0.0, 955 * 640.0, 0.0, -40.0, 7567 * 640.0)
    rgb = read_preview(sorted(str(p) for p in PISA_AFTER.glob("*.tif")), "EPSG:32632",
                       transform, (64, 64))  # fmt: skip
    assert rgb.shape == (64, 64, 3)
    valid = np.isfinite(rgb).all(axis=-1)
    assert valid.mean() > 0.95
    assert 0.0 <= np.nanmin(rgb) and np.nanmax(rgb) <= 1.0
    assert 0.2 < np.nanmean(rgb) < 0.8  # stretched, not a black or white image


def test_uint8_true_colour_is_shown_as_it_is():
    scene = str(RASTERS / "czech_s2_tci_20220319.tif")
    transform = Affine(160.0, 0.0, 849 * 640.0, 0.0, -160.0, 8717 * 640.0)  # chip row -8717
    rgb = read_preview([scene], "EPSG:32633", transform, (12, 12))
    assert np.isfinite(rgb).all()
    assert 0.15 < rgb.mean() < 0.6  # a March scene in 8-bit TCI, /255


def test_with_the_runs_radiometry_the_preview_shows_what_the_model_saw():
    from aerial_kedro.geo.radiometry import PRESETS

    transform = Affine(40.0, 0.0, 955 * 640.0, 0.0, -40.0, 7567 * 640.0)
    files = sorted(str(p) for p in PISA_AFTER.glob("*.tif"))
    percentile = read_preview(files, "EPSG:32632", transform, (64, 64))
    l1c = read_preview(
        files, "EPSG:32632", transform, (64, 64), radiometry=PRESETS["sentinel2_l1c"]
    )
    raw = read_preview(files, "EPSG:32632", transform, (64, 64), radiometry=PRESETS["none"])
    assert np.isfinite(l1c).mean() > 0.95
    # The L1C conversion is the featurizer's 8-bit look: darker than a 2-98 % stretch of a winter
    # scene, and not the saturated white of uint16 numbers shown as they are.
    assert np.nanmean(l1c) < np.nanmean(percentile)
    assert np.nanmean(raw) > 0.99
    assert 0.05 < np.nanmean(l1c) < 0.6
