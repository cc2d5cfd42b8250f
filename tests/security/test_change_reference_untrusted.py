"""Issue 24 items 2-4: a change reference raster (``change.reference``) is untrusted content.

* It is read window by window under the compared chips, never whole: a 442 KB sparse GeoTIFF
  declaring 60,000 x 60,000 px gives the right fractions in little memory.
* It is opened like every raster input (:func:`aerial_kedro.geo.raster_access.open_raster`): VRT
  XML saved as ``.tif`` does not open, a ``.vrt`` only when trusted.
* Without georeference it must have the after date's size: otherwise one line naming both.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import rasterio
from conftest import SHARED_DATA, raw_band_vrt
from rasterio.transform import from_origin

from aerial_kedro.change.reference import read_reference_mask

UTM = "EPSG:32633"


SIDE_PX = 60_000
# Chip (row, col) = (-8700, 800) of the 640 m grid is the raster's top-left corner.
ORIGIN = (800 * 640.0, 8700 * 640.0)
PISA_AFTER = sorted(str(p) for p in (SHARED_DATA / "oscd" / "pisa" / "imgs_2").glob("*.tif"))


def sparse_reference(path) -> str:
    """60,000 x 60,000 px at 10 m, tiled and sparse; only the top-left 128 x 128 px written:
    chip (-8700, 800) all changed (2), chip (-8700, 801) half changed, the rest never written."""
    profile = {"driver": "GTiff", "width": SIDE_PX, "height": SIDE_PX, "count": 1,
               "dtype": "uint8", "crs": UTM, "transform": from_origin(*ORIGIN, 10.0, 10.0),
               "tiled": True, "blockxsize": 256, "blockysize": 256, "sparse_ok": True,
               "compress": "deflate", "nodata": 255}  # fmt: skip
    pixels = np.ones((64, 128), dtype=np.uint8)
    pixels[:, :64] = 2
    pixels[:32, 64:] = 2
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(pixels, 1, window=((0, 64), (0, 128)))
    return str(path)


def test_a_huge_sparse_reference_is_read_only_under_the_chips(tmp_path):
    """Before: the whole 3.6 GB mask was read, then copied to float32 (MemoryError after
    7.3 GB RSS); after: the two chips' strip, right fractions, a few hundred MB."""
    path = sparse_reference(tmp_path / "reference.tif")
    assert (tmp_path / "reference.tif").stat().st_size < 1_000_000
    script = textwrap.dedent(f"""
        # Peak RSS of this process image (VmHWM): ru_maxrss would carry over the pytest
        # parent's peak through fork + exec, which grows with the tests run before.
        import json, resource
        import pandas as pd
        from aerial_kedro.change.reference import chip_changed_fraction, read_reference_mask
        chips = pd.DataFrame({{"chip_id": ["a", "b"], "crs": "{UTM}", "row": [-8700, -8700],
                               "col": [800, 801]}})
        mask = read_reference_mask({path!r}, 2)
        out = chip_changed_fraction(mask, chips, 64, 10.0)
        print(json.dumps({{"fraction": out["reference_fraction"].tolist(),
                           "coverage": out["reference_coverage"].tolist(),
                           "rss_mb": int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024}}))
    """)
    # A 3 GB address-space cap turns a whole read into a quick MemoryError, not a swapped host.
    limit = "import resource; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))\n"
    done = subprocess.run(
        [sys.executable, "-c", limit + script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(result)
    assert result["fraction"] == [1.0, 0.5] and result["coverage"] == [1.0, 1.0]
    assert result["rss_mb"] < 1024


def test_vrt_xml_saved_as_tif_is_not_opened_as_a_reference(tmp_path):
    """Before: the VRT's raw band read the secret file's bytes and the run scored them."""
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"top secret bytes that must never become pixels\n" * 200)
    disguised = tmp_path / "ref.tif"
    disguised.write_text(raw_band_vrt(str(secret)))
    with pytest.raises(ValueError, match="cannot be read") as error:
        read_reference_mask(str(disguised), 2)
    assert "\n" not in str(error.value)
    vrt = tmp_path / "ref.vrt"
    vrt.write_text(raw_band_vrt(str(secret)))
    with pytest.raises(ValueError, match="scoring.allow_vrt"):
        read_reference_mask(str(vrt), 2)
    with pytest.raises(ValueError, match="raw-band VRT"):
        read_reference_mask(str(vrt), 2, allow_vrt=True)


@pytest.mark.skipif(not PISA_AFTER, reason="OSCD Pisa missing")
def test_a_reference_without_georeference_must_have_the_after_dates_size(tmp_path):
    """Before: a 40 x 30 px reference was stretched over the 718 x 776 px after date: rc 0,
    every chip changed, precision 1.0."""
    path = tmp_path / "labels.tif"
    with rasterio.open(path, "w", driver="GTiff", width=40, height=30, count=1,
                       dtype="uint8") as dst:  # fmt: skip
        dst.write(np.full((1, 30, 40), 2, dtype=np.uint8))
    with pytest.raises(ValueError) as error:
        read_reference_mask(str(path), 2, PISA_AFTER)
    message = str(error.value)
    assert "\n" not in message and str(path) in message
    assert "40 x 30 px" in message and "718 x 776 px" in message
