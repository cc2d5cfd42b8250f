"""The one raster opener guards every raster input: a raw-band VRT saved under a raster's name
never reads a local file's bytes as pixels, whether it poses as a band file of a per-band stack
or as the radiometry reference another date is matched to (score sources: test_rasters_untrusted;
change references: test_change_reference_untrusted)."""

from __future__ import annotations

import shutil

import pytest
from conftest import SHARED_DATA, raw_band_vrt

from aerial_kedro.chips.planning import PlanSettings, matched_radiometry, plan_source

PISA = SHARED_DATA / "oscd" / "pisa" / "imgs_1"


def secret(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_bytes(b"top secret bytes that must never become pixels\n" * 200)
    return path


@pytest.mark.skipif(not PISA.is_dir(), reason="OSCD Pisa missing")
def test_a_vrt_posing_as_a_band_file_is_refused_with_its_name(tmp_path):
    stack = tmp_path / "stack"
    stack.mkdir()
    for band in ("B02", "B03"):
        shutil.copy(next(PISA.glob(f"*_{band}.tif")), stack / f"T32TPP_20160809_{band}.tif")
    disguised = stack / "T32TPP_20160809_B04.tif"
    disguised.write_text(raw_band_vrt(str(secret(tmp_path))))
    with pytest.raises(ValueError, match="cannot be opened") as error:
        plan_source(str(stack))
    assert str(error.value).startswith(f"band file {disguised} ")
    assert "\n" not in str(error.value)


@pytest.mark.skipif(not PISA.is_dir(), reason="OSCD Pisa missing")
def test_a_vrt_posing_as_the_radiometry_reference_is_not_read(tmp_path):
    plan, _, radiometry = plan_source(str(PISA))
    assert not plan.empty and radiometry is not None
    disguised = tmp_path / "reference.tif"
    disguised.write_text(raw_band_vrt(str(secret(tmp_path))))
    with pytest.raises(ValueError, match="radiometry_reference") as error:
        matched_radiometry(plan, radiometry, str(disguised), PlanSettings(radiometry_match="always"))
    assert "\n" not in str(error.value)
