"""Change GeoTIFF: transition codes, colour table and code meanings, written by the class
GeoTIFF writer of `score` and read back."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import rasterio

from aerial_kedro.change.raster import change_codes, change_raster, chip_codes, class_grid
from aerial_kedro.geo.class_map import NODATA, read_class_raster

GROUPS = ("forest", "cropland", "grassland", "built", "water")


def chip(col: int, status: str, before=None, after=None, changed=False) -> dict:
    return {"chip_id": f"c{col}", "crs": "EPSG:32633", "row": -8700, "col": col,
            "status": status, "coarse_before": before, "coarse_after": after, "changed": changed}  # fmt: skip


@pytest.fixture
def table() -> pd.DataFrame:
    return pd.DataFrame(
        [
            chip(850, "both_scored", "cropland", "built", changed=True),
            chip(851, "both_scored", "cropland", "cropland"),
            chip(852, "both_scored", "forest", "cropland"),  # flipped, below threshold
            chip(853, "cloudy", "forest", "built"),
            chip(854, "before_only", "forest", None),
            chip(856, "empty", None, "water"),  # col 855 has no chip: nodata
        ]
    )


def test_codes_are_dense_and_named():
    codes = change_codes(GROUPS)
    assert len(codes.names) == 5 + 25 + 4
    assert codes.names[codes.transition(1, 3)] == "cropland -> built"
    assert codes.names[-4:] == ("cloudy", "before only", "after only", "not scored")
    # The "to" class colour for a transition, a paler one for no change.
    assert codes.colors[codes.transition(1, 3)] == "#d62728"
    assert codes.colors[codes.stable(3)] != "#d62728"
    with pytest.raises(ValueError, match="transition codes"):
        change_codes([f"c{i}" for i in range(16)])


def test_chip_codes(table):
    codes = change_codes(GROUPS)
    assert chip_codes(table, codes).tolist() == [
        codes.transition(1, 3),
        codes.stable(1),
        codes.stable(1),  # not changed: shown as its class after
        codes.special("cloudy"),
        codes.special("before only"),
        codes.special("not scored"),
    ]


def test_geotiff_round_trip(table, tmp_path):
    codes = change_codes(GROUPS)
    raster = change_raster(table, "EPSG:32633", 640.0, codes, {"threshold": 0.5})
    assert raster.classes.shape == (1, 7) and raster.classes[0, 5] == NODATA
    path = str(tmp_path / "change.tif")
    raster.write(path)
    back = read_class_raster(path)
    assert back.crs == "EPSG:32633"
    assert back.transform.c == 850 * 640.0 and back.transform.f == 8700 * 640.0
    assert np.array_equal(back.classes, raster.classes)
    assert back.class_names == codes.names
    described = json.loads(back.tags["change_codes"])
    assert described[codes.transition(1, 3)] == {
        "code": codes.transition(1, 3), "name": "cropland -> built", "kind": "changed",
        "from": "cropland", "to": "built",
    }  # fmt: skip
    assert back.tags["threshold"] == "0.5"
    with rasterio.open(path) as src:
        assert src.colormap(1)[codes.transition(1, 3)][:3] == (214, 39, 40)


def test_class_grids_share_the_change_grid(table):
    codes = change_codes(GROUPS)
    raster = change_raster(table, "EPSG:32633", 640.0, codes)
    after = class_grid(table, "EPSG:32633", "coarse_after", GROUPS, raster)
    assert after[0].tolist() == [3, 1, 1, 3, NODATA, NODATA, 4]
