"""Relative radiometric normalisation (aerial_kedro.geo.relative_radiometry) on real scenes."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from conftest import RASTERS

from aerial_kedro.geo.preview import read_rgb
from aerial_kedro.geo.radiometry import PRESETS, cloud_mask, stretch
from aerial_kedro.geo.relative_radiometry import (
    common_grid,
    compose,
    fit_moments,
    match_radiometry,
)

CLEAR = str(RASTERS / "czech_s2_tci_20220319.tif")
CLOUDY = str(RASTERS / "czech_s2_tci_20220316_cloudy.tif")
CZECH_AREA = shapely.box(543100.0, 5567910.0, 560930.0, 5579500.0)  # EPSG:32633


@pytest.mark.parametrize("preset", ["none", "sentinel2_l1c", "sentinel2_l2a_offset"])
def test_the_adjustment_folds_exactly_into_the_conversion(preset):
    radiometry = PRESETS[preset]
    pixels = np.random.default_rng(1).integers(0, 4000 if preset != "none" else 256, (50, 50, 3))
    gain, bias = np.array([1.3, 0.8, 1.05]), np.array([-12.0, 7.5, 0.0])
    matched = compose(radiometry, gain, bias)
    expected = gain * stretch(pixels, radiometry) + bias
    np.testing.assert_allclose(stretch(pixels, matched), expected, rtol=1e-5, atol=1e-3)
    assert matched.name == "matched" and matched.scale == radiometry.scale


def test_moments_are_matched_band_by_band():
    rng = np.random.default_rng(2)
    reference = rng.normal(100, 20, (100, 100, 3))
    values = reference * np.array([0.5, 2.0, 1.0]) + np.array([30.0, -50.0, 10.0])
    gain, bias = fit_moments(values, reference, np.ones((100, 100), bool))
    np.testing.assert_allclose(gain, [2.0, 0.5, 1.0], rtol=1e-9)
    np.testing.assert_allclose(gain * values + bias, reference, atol=1e-9)
    with pytest.raises(ValueError, match="clear pixels in common"):
        fit_moments(values, reference, np.zeros((100, 100), bool))


def test_the_hazy_date_read_matched_has_the_clear_dates_statistics():
    radiometry = PRESETS["none"]
    matched, fit = match_radiometry([CLOUDY], radiometry, [CLEAR], radiometry, "EPSG:32633",
                                    CZECH_AREA)  # fmt: skip
    assert fit["pixels"] > 500_000 and fit["resolution_m"] >= 10.0
    transform, shape = common_grid(CZECH_AREA, 10.0, max_pixels=200_000)
    hazy, _ = read_rgb([CLOUDY], "EPSG:32633", transform, shape)
    clear, _ = read_rgb([CLEAR], "EPSG:32633", transform, shape)
    before, after = stretch(hazy, radiometry), stretch(hazy, matched)
    valid = np.isfinite(hazy).all(-1) & np.isfinite(clear).all(-1)
    valid &= ~cloud_mask(np.nan_to_num(before)) & ~cloud_mask(np.nan_to_num(clear))
    gap_before = np.abs(before[valid].mean(0) - clear[valid].mean(0))
    gap_after = np.abs(after[valid].mean(0) - clear[valid].mean(0))
    # 16 March is hazier: brighter and flatter. Matched, its band means sit on 19 March's.
    assert (gap_before > 5).any() and (gap_after < 2).all()
    assert np.allclose(after[valid].std(0), clear[valid].std(0), rtol=0.05)


def test_sources_that_do_not_overlap_cannot_be_matched():
    with pytest.raises(ValueError, match="do not overlap"):
        match_radiometry([CLOUDY], PRESETS["none"], [CLEAR], PRESETS["none"], "EPSG:32633",
                         shapely.box(0, 0, 1, 1).intersection(shapely.box(5, 5, 6, 6)))  # fmt: skip


def test_a_matched_conversion_keeps_the_sources_own_for_judging_clouds():
    matched = compose(PRESETS["none"], np.array([1.8, 1.5, 1.2]), np.array([-60.0, -40.0, -10.0]))
    cloud = np.full((4, 4, 3), 230, np.uint8)
    assert not cloud_mask(stretch(cloud, matched)).any()  # tinted: no longer white
    assert cloud_mask(stretch(cloud, matched.base)).all()
    assert matched.to_dict()["base"]["name"] == "none"
    assert "base" not in PRESETS["sentinel2_l1c"].to_dict()  # plain runs keep their identity
