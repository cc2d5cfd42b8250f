"""One file per band -> one RGB raster, on the real OSCD Sentinel-2 band files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import SHARED_DATA

from aerial_kedro.geo.band_stack import (
    band_colour,
    check_band_files,
    group_band_files,
    is_stack_uri,
    open_stack,
    stack_paths,
    stack_uri,
)
from aerial_kedro.geo.raster_inspection import inspect_raster

PISA = SHARED_DATA / "oscd" / "pisa" / "imgs_1"


def band_file(folder: Path, band: str) -> str:
    return str(next(folder.glob(f"*_{band}.tif")))


@pytest.mark.parametrize(
    ("name", "colour"),
    [
        ("T32TPP_20180211T102141_B04.tif", "red"),
        ("S2A_OPER_MSI_L1C_TL_EPA__20160809T015434_A000162_T32TPP_B03.tif", "green"),
        ("T32TPP_20180211T102141_B02_10m.jp2", "blue"),
        ("LC08_L2SP_039037_20200101_20200823_02_T1_SR_B4.TIF", "red"),
        ("T32TPP_20180211T102141_B08.tif", None),
        ("T32TPP_20180211T102141_B8A.tif", None),
        ("scene_B12.tif", None),
        ("B04_only_a_prefix_but_ok.tif", "red"),
        ("rgb.tif", None),
    ],
)
def test_band_colour_from_file_names(name, colour):
    assert band_colour(f"/data/{name}") == colour


def test_scene_folder_becomes_one_rgb_stack_equal_to_its_band_files():
    files = sorted(str(p) for p in PISA.glob("*.tif"))
    stacks, others = group_band_files(files)
    assert others == [] and len(stacks) == 1 and is_stack_uri(stacks[0])
    red, green, blue = stack_paths(stacks[0])
    assert (red, green, blue) == tuple(band_file(PISA, b) for b in ("B04", "B03", "B02"))
    with open_stack(stacks[0]) as stack:
        assert (stack.count, stack.dtypes[0], stack.crs.to_epsg()) == (3, "uint16", 4326)
        pixels = stack.read()
        transform = stack.transform
    for index, path in enumerate((red, green, blue)):
        with rasterio.open(path) as band:
            np.testing.assert_array_equal(pixels[index], band.read(1))
            assert band.transform == transform
    meta = inspect_raster(stacks[0])  # geographic CRS accepted: planned on its UTM zone
    assert (meta.count, meta.dtype, meta.path) == (3, "uint16", stacks[0])


def test_two_scenes_in_one_folder_and_incomplete_scenes(tmp_path):
    for date in ("imgs_1", "imgs_2"):
        for path in (PISA.parent / date).glob("*.tif"):
            shutil.copy(path, tmp_path / path.name)
    (tmp_path / "T32TPP_20180211T102141_B04.tif").unlink()  # second date loses its red
    stacks, others = group_band_files(sorted(str(p) for p in tmp_path.glob("*.tif")))
    assert len(stacks) == 1 and "20160809" in stacks[0]
    assert [Path(p).name for p in others] == [
        "T32TPP_20180211T102141_B02.tif", "T32TPP_20180211T102141_B03.tif",
    ]  # fmt: skip


def test_bands_of_different_sizes_fail_in_one_line_naming_the_files(tmp_path):
    with rasterio.open(band_file(PISA, "B02")) as src:
        profile, pixels = src.profile, src.read(window=((0, 700), (0, 700)))
    profile.update(width=700, height=700)
    small = tmp_path / "cropped_B02.tif"
    with rasterio.open(small, "w", **profile) as dst:
        dst.write(pixels)
    uri = stack_uri(band_file(PISA, "B04"), band_file(PISA, "B03"), str(small))
    with pytest.raises(ValueError, match="band files differ in size") as error:
        check_band_files(uri)
    message = str(error.value)
    assert "\n" not in message and "cropped_B02.tif (700 x 700 px)" in message
    assert "B04.tif (718 x 776 px)" in message


def test_bands_in_different_crs_fail(tmp_path):
    with rasterio.open(band_file(PISA, "B02")) as src:
        profile, pixels = src.profile, src.read()
    profile.update(crs="EPSG:4258")
    other = tmp_path / "etrs89_B02.tif"
    with rasterio.open(other, "w", **profile) as dst:
        dst.write(pixels)
    uri = stack_uri(band_file(PISA, "B04"), band_file(PISA, "B03"), str(other))
    with pytest.raises(ValueError, match="band files differ in CRS.*etrs89_B02.tif"):
        check_band_files(uri)
