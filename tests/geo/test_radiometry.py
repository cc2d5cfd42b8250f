"""Radiometry presets and mappings, on real Sentinel-2 L1C band files; cloud fraction on real scenes."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from conftest import RASTERS, SHARED_DATA

from aerial_kedro.geo.band_stack import group_band_files, open_stack
from aerial_kedro.geo.radiometry import (
    PRESETS,
    Radiometry,
    cloud_fraction,
    parse_radiometry,
    resolve_radiometry,
    stretch,
    to_uint8,
)

OSCD = SHARED_DATA / "oscd"
EUROSAT_MEAN_RGB = np.array([88.0, 97.0, 104.0])  # 3,000 random EuroSAT tiles (radiometry.py)


def scene_pixels(city: str, date: str = "imgs_1") -> np.ndarray:
    """The whole OSCD scene as HWC uint16 DNs (R, G, B), through the band stack."""
    stacks, _ = group_band_files(sorted(str(p) for p in (OSCD / city / date).glob("*.tif")))
    with open_stack(stacks[0]) as dataset:
        return np.moveaxis(dataset.read(), 0, -1)


def test_l1c_preset_gives_european_l1c_the_eurosat_look():
    """Pisa and Montpellier (summer L1C) land within ~10 levels of EuroSAT's mean colour."""
    for city in ("pisa", "montpellier"):
        pixels = to_uint8(scene_pixels(city), PRESETS["sentinel2_l1c"])
        assert pixels.dtype == np.uint8
        mean = pixels.reshape(-1, 3).mean(axis=0)
        assert np.abs(mean - EUROSAT_MEAN_RGB).max() < 14, (city, mean)
        # Far from a naive full-range scaling (DN / 65535 * 255 is black: mean ~5).
        assert (scene_pixels(city).astype(float) / 65535 * 255).mean() < 10


def test_mapping_is_the_documented_formula():
    radiometry = parse_radiometry({"scale": 0.0001, "offset": -0.1, "min": [0.0, 0.0, 0.05],
                                   "max": 0.2})  # fmt: skip
    dn = np.array([[[1000, 2100, 3000], [3000, 500, 2000]]], dtype=np.uint16)
    # R: (1000e-4 - 0.1 - 0) / 0.2 * 255 = 0; G: (0.21 - 0.1) / 0.2 * 255 = 140.25 -> 140;
    # B: (0.3 - 0.1 - 0.05) / 0.15 * 255 = 255; second pixel: R 255 (clipped from 510),
    # G clipped to 0 from -63.75, B (0.2 - 0.1 - 0.05) / 0.15 * 255 = 85.
    assert to_uint8(dn, radiometry).tolist() == [[[0, 140, 255], [255, 0, 85]]]


def test_baseline_04_offset_presets_undo_the_plus_1000():
    dn = scene_pixels("pisa")[:200, :200]
    shifted = dn + np.uint16(1000)
    for name in ("sentinel2_l1c", "sentinel2_l2a"):
        np.testing.assert_array_equal(
            to_uint8(shifted, PRESETS[f"{name}_offset"]), to_uint8(dn, PRESETS[name])
        )


def test_l2a_preset_is_the_tci_stretch():
    dn = np.array([[[0, 1200, 2000], [2500, 1, 65535]]], dtype=np.uint16)
    assert to_uint8(dn, PRESETS["sentinel2_l2a"]).tolist() == [[[0, 153, 255], [255, 0, 255]]]


def test_auto_resolves_by_dtype_and_none_refuses_16_bit():
    assert resolve_radiometry("auto", "uint8").name == "none"
    assert resolve_radiometry("auto", "uint16").name == "sentinel2_l1c"
    with pytest.raises(ValueError, match="float32 pixels"):
        resolve_radiometry("auto", "float32")
    with pytest.raises(ValueError, match="uint16 pixels cannot be read as they are"):
        resolve_radiometry(PRESETS["none"], "uint16")
    pixels = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    assert to_uint8(pixels, PRESETS["none"]) is pixels


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("sentinel2_l3", "'sentinel2_l3' is not a preset; allowed: auto, none, sentinel2_l1c"),
        ({"scale": 1, "min": 0}, "mapping needs max"),
        ({"min": 0, "max": 1, "gamma": 2}, r"unknown key\(s\) \['gamma'\]"),
        ({"min": [0, 0], "max": 1}, "min: '\\[0, 0\\]' is not a number or three numbers"),
        ({"min": 5, "max": 5}, "must exceed min"),
        (12, "is not a preset name or a mapping"),
    ],
)
def test_bad_radiometry_is_one_line(value, message):
    with pytest.raises(ValueError, match=message) as error:
        parse_radiometry(value)
    assert "\n" not in str(error.value)


def test_radiometry_round_trips_as_plain_values():
    for radiometry in PRESETS.values():
        assert Radiometry.from_dict(radiometry.to_dict()) == radiometry
    assert PRESETS["sentinel2_l1c"].key() != PRESETS["sentinel2_l1c_offset"].key()


def chip_cloud_fractions(path) -> np.ndarray:
    """Cloud fraction of every whole 64-px block of an 8-bit scene."""
    with rasterio.open(path) as dataset:
        pixels = np.moveaxis(dataset.read(), 0, -1)
    rows, cols = pixels.shape[0] // 64, pixels.shape[1] // 64
    return np.array(
        [
            cloud_fraction(pixels[r * 64 : (r + 1) * 64, c * 64 : (c + 1) * 64])
            for r in range(rows)
            for c in range(cols)
        ]
    )


def test_cloud_fraction_separates_the_cloudy_date_from_the_clear_one():
    cloudy = chip_cloud_fractions(RASTERS / "czech_s2_tci_20220316_cloudy.tif")
    clear = chip_cloud_fractions(RASTERS / "czech_s2_tci_20220319.tif")
    assert cloudy.mean() > 0.05 and clear.mean() < 0.005
    assert (cloudy > 0.5).sum() >= 20 and (clear > 0.5).sum() == 0
    assert clear.max() < 0.2


def test_cloud_fraction_counts_valid_pixels_only_and_sand_is_not_cloud():
    white = np.full((4, 4, 3), 250, dtype=np.uint8)
    valid = np.zeros((4, 4), dtype=bool)
    valid[:2] = True
    white[:2, :2] = (120, 90, 60)  # half of the valid pixels are soil
    assert cloud_fraction(white, valid) == 0.5
    assert cloud_fraction(white, np.zeros((4, 4), dtype=bool)) == 0.0
    # Abu Dhabi's sand saturates the L1C display range: white once clipped, red-ish unclipped.
    sand = scene_pixels("abudhabi")
    l1c = PRESETS["sentinel2_l1c"]
    assert cloud_fraction(to_uint8(sand, l1c)) > 0.3
    assert cloud_fraction(stretch(sand, l1c)) < 0.06
