"""Issue 13 items 1 and 5: raster files are untrusted content.

* A VRT (XML) can read any local file as pixels or fetch any URL; GDAL recognises it whatever
  the file's name. Scoring opens GeoTIFF/COG, JPEG 2000 and Erdas Imagine only, each file with
  the one driver its extension names; ``*.vrt`` files only when ``scoring.allow_vrt`` trusts
  them, and raw-band VRTs never.
* A tiny GeoTIFF can declare a continent-sized extent; planning cuts chips only where a
  raster's dataset mask (nodata, alpha, mask band) has valid pixels, found on a reduced-resolution
  read of bounded cost, and refuses plans over ``scoring.max_chips`` before enumerating a chip.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from conftest import RASTERS
from rasterio.transform import from_origin

from aerial_kedro.chips.planning import PlanSettings, plan_source
from aerial_kedro.geo.chip_planning import PlanTooLargeError, plan_chips
from aerial_kedro.geo.grid import ChipGrid, chips_inside
from aerial_kedro.geo.raster_access import open_raster
from aerial_kedro.geo.raster_inspection import inspect_raster

# The hostile corner raster: 5,120 km on a side in SIDE_PX pixels, real pixels in a corner.
SIDE_PX, CORNER_PX = 51_200, 64
SECRET = b"top secret bytes that must never become pixels\n" * 200


def raw_band_vrt(target: str) -> str:
    """A VRT that reads ``target``'s bytes as an 8-bit band (what a hostile upload would hold)."""
    return f"""<VRTDataset rasterXSize="64" rasterYSize="64">
  <SRS>EPSG:32633</SRS>
  <GeoTransform>500000, 10, 0, 5600000, 0, -10</GeoTransform>
  {"".join(f'''<VRTRasterBand dataType="Byte" band="{b}" subClass="VRTRawRasterBand">
    <SourceFilename relativeToVRT="0">{target}</SourceFilename>
    <ImageOffset>0</ImageOffset><PixelOffset>1</PixelOffset><LineOffset>64</LineOffset>
  </VRTRasterBand>''' for b in (1, 2, 3))}
</VRTDataset>"""


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_bytes(SECRET)
    return path


def test_vrt_xml_disguised_as_geotiff_is_not_opened(tmp_path, secret):
    disguised = tmp_path / "scene.tif"
    disguised.write_text(raw_band_vrt(str(secret)))
    with pytest.raises(rasterio.errors.RasterioError):
        open_raster(str(disguised))
    plan, problems, _ = plan_source(str(tmp_path), PlanSettings())
    assert plan.empty
    assert problems[0]["path"].endswith("scene.tif") and "cannot be opened" in problems[0]["reason"]


def test_vrt_files_are_refused_unless_trusted_and_raw_bands_stay_off(tmp_path, secret):
    vrt = tmp_path / "scene.vrt"
    vrt.write_text(raw_band_vrt(str(secret)))
    _, problems, _ = plan_source(str(tmp_path), PlanSettings())
    assert [p["path"] for p in problems] == [str(vrt)] and "scoring.allow_vrt" in problems[0]["reason"]
    # Trusted, a VRT is opened, but never a raw-band one: the bytes never load.
    with pytest.raises(rasterio.errors.RasterioError, match="raw-band VRT"):
        open_raster(str(vrt))
    _, problems, _ = plan_source(str(tmp_path), PlanSettings(allow_vrt=True))
    assert "raw-band VRT" in problems[0]["reason"]


def test_a_tiny_file_declaring_a_huge_extent_is_refused_before_planning(tmp_path):
    path = tmp_path / "huge.tif"
    with rasterio.open(path, "w", driver="GTiff", width=51_200, height=51_200, count=3,
                       dtype="uint8", crs="EPSG:32633", tiled=True, sparse_ok=True,
                       transform=from_origin(0, 6_000_000, 100, 100)) as dst:  # fmt: skip
        dst.write(np.zeros((3, 16, 16), np.uint8), window=((0, 16), (0, 16)))
    assert path.stat().st_size < 1_000_000  # sparse: the declared 5,120 km are not on disk
    meta = inspect_raster(str(path))
    with pytest.raises(PlanTooLargeError, match=r"more than scoring.max_chips \(100,000\)"):
        plan_chips([meta], ChipGrid(), max_chips=100_000)
    with pytest.raises(PlanTooLargeError, match="huge.tif"):
        plan_source(str(path), PlanSettings(max_chips=1000))


def corner_of_data(path, *, side_px: int, res: float, corner_px: int) -> tuple[float, ...]:
    """A sparse GeoTIFF declaring ``side_px * res`` on a side, nodata 0, holding real scene
    pixels in its south-east ``corner_px`` square only; returns that square's bounds."""
    with rasterio.open(RASTERS / "czech_s2_tci_20220319.tif") as scene:
        pixels = scene.read(window=((0, corner_px), (0, corner_px)))
    assert (pixels.max(axis=0) > 0).all()  # every pixel of the corner is data
    transform = from_origin(0, 6_000_000, res, res)
    with rasterio.open(path, "w", driver="GTiff", width=side_px, height=side_px, count=3,
                       dtype="uint8", crs="EPSG:32633", tiled=True, sparse_ok=True, nodata=0,
                       transform=transform) as dst:  # fmt: skip
        start = side_px - corner_px
        dst.write(pixels, window=((start, side_px), (start, side_px)))
    left, top = transform @ (side_px - corner_px, side_px - corner_px)
    right, bottom = transform @ (side_px, side_px)
    return left, bottom, right, top


def test_a_huge_mostly_empty_raster_is_planned_only_where_it_has_data(tmp_path):
    path = tmp_path / "corner.tif"
    side_px, res = SIDE_PX, 5_120_000 / SIDE_PX  # 5,120 km: 64 M chips of 640 m declared
    data = corner_of_data(path, side_px=side_px, res=res, corner_px=CORNER_PX)
    assert path.stat().st_size < 2_000_000
    meta = inspect_raster(str(path))
    assert meta.bounds == (0.0, 880_000.0, 5_120_000.0, 6_000_000.0)
    chips = plan_chips([meta], ChipGrid(), max_chips=10_000)  # the declared extent: refused
    rows, cols = chips_inside(data, 640.0)
    in_data = {f"32633_{row}_{col}" for row in rows for col in cols}
    assert len(in_data) == 100 and {chip.chip_id for chip in chips} == in_data
    plan, problems, _ = plan_source(str(path), PlanSettings(max_chips=10_000))
    assert not problems and set(plan["chip_id"]) == in_data


def test_valid_bounds_never_cut_into_data_read_at_reduced_resolution(tmp_path):
    # A nodata raster whose written blocks span more than VALID_MASK_MAX_PX: the mask is sampled.
    path = tmp_path / "sampled.tif"
    transform = from_origin(0, 6_000_000, 100, 100)
    with rasterio.open(RASTERS / "czech_s2_tci_20220319.tif") as scene:
        pixels = scene.read(window=((0, 1000), (0, 1700)))
    with rasterio.open(path, "w", driver="GTiff", width=4096, height=4096, count=3, dtype="uint8",
                       crs="EPSG:32633", tiled=True, sparse_ok=True, nodata=0,
                       transform=transform) as dst:  # fmt: skip
        dst.write(pixels, window=((2000, 3000), (1100, 2800)))
        dst.write(pixels[:, :10, :10], window=((100, 110), (3900, 3910)))  # a far speck of data
    left, bottom, right, top = inspect_raster(str(path)).valid_bounds
    assert left <= 1100 * 100 and right >= 3910 * 100  # the speck is inside
    assert bottom <= 6_000_000 - 3000 * 100 and top >= 6_000_000 - 100 * 100
