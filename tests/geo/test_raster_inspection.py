"""Raster inspection: header checks pass real scenes as they are; valid bounds follow the data."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from conftest import CZECH_SCENE as SCENE
from conftest import RASTERS
from rasterio.transform import from_origin

from aerial_kedro.geo.chip_planning import plan_chips
from aerial_kedro.geo.grid import ChipGrid, chips_inside
from aerial_kedro.geo.raster_inspection import VALID_MASK_MAX_PX, RasterMeta, inspect_raster

REAL_SCENES = sorted(str(p) for p in [*RASTERS.glob("*.tif"), *RASTERS.glob("czech-2x2/*.tif")])


@pytest.mark.parametrize("path", REAL_SCENES)
def test_fully_valid_real_scenes_keep_their_declared_bounds(path):
    meta = inspect_raster(path)
    assert meta.valid_bounds is None and meta.data_bounds == meta.bounds
    assert RasterMeta.from_dict(meta.to_dict()) == meta


def _with_nodata_margins(tmp_path, west_px: int, north_px: int) -> tuple[str, tuple]:
    """The real scene with nodata 0 declared and its west / north margins blanked; returns the
    path and the bounds of the pixels left."""
    with rasterio.open(SCENE) as src:
        profile = src.profile | {"driver": "GTiff", "compress": "deflate", "nodata": 0}
        profile.pop("photometric", None)
        pixels = src.read()
        transform = src.transform
    pixels[:, :north_px, :] = 0
    pixels[:, :, :west_px] = 0
    path = tmp_path / "margins.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(pixels)
    left, top = transform @ (west_px, north_px)
    right, bottom = transform @ (pixels.shape[2], pixels.shape[1])
    return str(path), (left, bottom, right, top)


def test_valid_bounds_hold_the_data_and_at_most_two_reduced_pixels_more(tmp_path):
    # The box is widened by one reduced pixel beyond the first / last one seen valid, whose
    # nearest sample may lie up to one reduced pixel inside the data: at most 2 beyond it.
    path, data = _with_nodata_margins(tmp_path, west_px=300, north_px=150)
    meta = inspect_raster(path)
    reduced_px = 10.0 * max(meta.width, meta.height) / VALID_MASK_MAX_PX  # metres
    left, bottom, right, top = meta.valid_bounds
    assert (bottom, right) == (data[1], data[2])  # the south and east edges are the scene's
    assert data[0] - 2 * reduced_px <= left <= data[0]
    assert data[3] <= top <= data[3] + 2 * reduced_px


def test_chips_are_planned_only_over_the_valid_pixels(tmp_path):
    path, data = _with_nodata_margins(tmp_path, west_px=300, north_px=150)
    whole = plan_chips([inspect_raster(str(SCENE))], ChipGrid())
    margins = plan_chips([inspect_raster(path)], ChipGrid())
    rows, cols = chips_inside(data, 640.0)
    expected = {f"32633_{row}_{col}" for row in rows for col in cols}
    planned = {chip.chip_id for chip in margins}
    assert expected <= planned < {chip.chip_id for chip in whole}
    # at most one chip row / column more than the data holds, none in the blanked margins' core
    assert len(planned) <= (len(rows) + 1) * (len(cols) + 1)
    assert all(chip.minx >= data[0] - 640 and chip.maxy <= data[3] + 640 for chip in margins)


def test_a_raster_with_no_valid_pixel_keeps_its_declared_extent(tmp_path):
    path = tmp_path / "blank.tif"
    with rasterio.open(path, "w", driver="GTiff", width=256, height=256, count=3, dtype="uint8",
                       nodata=0, crs="EPSG:32633",
                       transform=from_origin(543_100, 5_579_500, 10, 10)) as dst:  # fmt: skip
        dst.write(np.zeros((3, 256, 256), np.uint8))
    meta = inspect_raster(str(path))
    assert meta.data_bounds == meta.bounds == (543_100.0, 5_576_940.0, 545_660.0, 5_579_500.0)
