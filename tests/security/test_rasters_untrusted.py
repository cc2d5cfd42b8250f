"""Issue 13 items 1 and 5: raster files are untrusted content.

* A VRT (XML) can read any local file as pixels or fetch any URL; GDAL recognises it whatever
  the file's name. Scoring opens GeoTIFF/COG, JPEG 2000 and Erdas Imagine only, each file with
  the one driver its extension names; ``*.vrt`` files only when ``scoring.allow_vrt`` trusts
  them, and raw-band VRTs never.
* A tiny GeoTIFF can declare a continent-sized extent; planning refuses plans over
  ``scoring.max_chips`` before enumerating a chip.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from aerial_kedro.geo.chip_grid import ChipGrid, PlanTooLargeError, inspect_raster, plan_chips
from aerial_kedro.geo.raster_access import open_raster
from aerial_kedro.pipelines.scoring.planning import plan_source

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
    plan, problems, _ = plan_source(str(tmp_path), {"max_empty_fraction": 0.5})
    assert plan.empty
    assert problems[0]["path"].endswith("scene.tif") and "cannot be opened" in problems[0]["reason"]


def test_vrt_files_are_refused_unless_trusted_and_raw_bands_stay_off(tmp_path, secret):
    vrt = tmp_path / "scene.vrt"
    vrt.write_text(raw_band_vrt(str(secret)))
    _, problems, _ = plan_source(str(tmp_path), {"max_empty_fraction": 0.5})
    assert [p["path"] for p in problems] == [str(vrt)] and "scoring.allow_vrt" in problems[0]["reason"]
    # Trusted, a VRT is opened, but never a raw-band one: the bytes never load.
    with pytest.raises(rasterio.errors.RasterioError, match="raw-band VRT"):
        open_raster(str(vrt))
    _, problems, _ = plan_source(str(tmp_path), {"max_empty_fraction": 0.5, "allow_vrt": True})
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
        plan_source(str(path), {"max_chips": 1000})
