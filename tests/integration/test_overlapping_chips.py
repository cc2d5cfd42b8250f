"""`score` with overlapping windows (`scoring.chip_stride_px`): a map drawn in half-chip cells.

Real scoring of the south-east quarter of the Czech scene with 64-px chips every 32 px: the
class raster has 320 m pixels, each the argmax of the mean probabilities of the (up to four)
windows covering it, and the cells tile the same ground as the side-by-side chips do.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import rasterio
from conftest import RASTERS, run_kedro

from aerial_kedro.chips.planning import source_slug
from aerial_kedro.geo.chip_planning import plan_chips_from_paths
from aerial_kedro.geo.grid import ChipGrid

pytestmark = pytest.mark.slow

QUARTER = RASTERS / "czech-2x2" / "czech_s2_tci_20220319.3.tif"
PREDICTIONS = "data/07_model_output/scoring/predictions"
MAPS = "data/08_reporting/maps"  # one folder per scored source


@pytest.fixture(scope="module")
def overlapping_run(trained_project, tmp_path_factory, spark):
    run_kedro(trained_project, "score", score_source=str(QUARTER),
              scoring={"chip_stride_px": 32, "chunk_size": 256})  # fmt: skip
    snapshot = tmp_path_factory.mktemp("overlap") / "reports"
    shutil.copytree(trained_project / MAPS / source_slug(str(QUARTER)), snapshot)
    shares = json.loads((snapshot / "class_shares.json").read_text())
    frame = spark.read.parquet(str(trained_project / PREDICTIONS))
    windows = frame.where(frame.run_id == shares["run_id"]).toPandas()
    return snapshot, shares, windows


def test_windows_start_every_half_chip_and_ids_say_so(overlapping_run):
    _, shares, windows = overlapping_run
    side_by_side, _ = plan_chips_from_paths([str(QUARTER)], ChipGrid(64, 10.0),
                                            max_empty_fraction=0.5)  # fmt: skip
    assert windows["chip_id"].str.endswith("_s32").all()
    assert shares["chips"]["planned"] == len(windows)
    # Every window starts on the 320 m cell grid and covers 640 m.
    assert ((windows["minx"] % 320) == 0).all() and ((windows["maxx"] - windows["minx"]) == 640).all()
    assert 3.5 * len(side_by_side) < len(windows) < 4.5 * len(side_by_side)


def test_class_raster_is_in_cells_averaged_over_their_windows(overlapping_run):
    reports, shares, windows = overlapping_run
    with rasterio.open(reports / "land_use_classes.tif") as raster:
        assert raster.res == (320.0, 320.0)
        classes = raster.read(1)
        transform = raster.transform
        assert raster.tags()["cell_size_m"] == "320.0"
    scored = windows[windows["status"] == "scored"]
    # Recompute three cells by hand: mean of the probability vectors of the windows covering them.
    rng = np.random.default_rng(0)
    checked = 0
    for i, j in zip(*np.nonzero(classes != 255), strict=True):
        if rng.random() > 0.02:
            continue
        x, y = rasterio.transform.xy(transform, i, j)
        covering = scored[(scored["minx"] < x) & (x < scored["maxx"])
                          & (scored["miny"] < y) & (y < scored["maxy"])]  # fmt: skip
        assert 1 <= len(covering) <= 4
        mean = np.mean(np.vstack(covering["probabilities"].to_numpy()), axis=0)
        assert classes[i, j] == int(np.argmax(mean))
        checked += 1
    assert checked >= 3
    assert shares["map"]["cell_size_m"] == 320.0 and shares["cells"]["scored"] > 0
    assert sum(shares["shares"].values()) == pytest.approx(1.0)


def test_cells_stay_inside_the_imagery(overlapping_run):
    reports, _, _ = overlapping_run
    with rasterio.open(QUARTER) as scene, rasterio.open(reports / "land_use_classes.tif") as raster:
        scene_bounds, map_bounds = scene.bounds, raster.bounds
    # Half a cell at most beyond the scene (cells at least half inside are mapped).
    assert map_bounds.left >= scene_bounds.left - 160 and map_bounds.right <= scene_bounds.right + 160
    assert map_bounds.bottom >= scene_bounds.bottom - 160 and map_bounds.top <= scene_bounds.top + 160
    collection = json.loads((reports / "land_use_chips.geojson").read_text())
    assert all(f["properties"]["chip_id"].endswith("_c32") for f in collection["features"])
    assert pd.Series([f["properties"]["chip_id"] for f in collection["features"]]).is_unique
