"""Run outcome -> class raster, GeoJSON, shares: placing predictions on the chip grid."""

from __future__ import annotations

import logging

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from conftest import RASTERS

from aerial_kedro.chips.planning import plan_from_chips, plan_from_tiles
from aerial_kedro.datasets import ClassGeoTiffDataset
from aerial_kedro.geo.band_stack import group_band_files
from aerial_kedro.geo.chip_planning import plan_chips_from_paths
from aerial_kedro.geo.class_map import NODATA, ClassRaster
from aerial_kedro.geo.grid import ChipGrid
from aerial_kedro.pipelines.scoring import maps

PART = RASTERS / "czech-2x2" / "czech_s2_tci_20220319.0.tif"
PISA = RASTERS.parent / "oscd" / "pisa" / "imgs_1"
CLASSES = ["Forest", "Residential", "SeaLake"]


@pytest.fixture(scope="module")
def plan() -> pd.DataFrame:
    chips, _ = plan_chips_from_paths([str(PART)], ChipGrid(64, 10.0))
    return plan_from_chips(chips, chunk_size=16)


def outcome_for(plan: pd.DataFrame) -> pd.DataFrame:
    """Every chip scored with class (row + col) % 3, except two empty and the last chunk pending."""
    done = plan[plan["chunk"] < plan["chunk"].max()]
    status = np.where(np.arange(len(done)) < 2, "empty", "scored")
    class_index = ((done["row"] + done["col"]) % 3).astype(float).where(status == "scored")
    return pd.DataFrame(
        {
            "chip_id": done["chip_id"].to_numpy(),
            "status": status,
            "class_index": class_index.to_numpy(),
            "confidence": np.where(status == "scored", 0.9, np.nan),
        }
    )


def test_outcomes_count_every_planned_chip(plan):
    table = maps.chip_outcomes(plan, outcome_for(plan))
    counts = maps.status_counts(table)
    pending = int((plan["chunk"] == plan["chunk"].max()).sum())
    assert counts == {
        "planned": len(plan),
        "scored": len(plan) - pending - 2,
        "empty": 2,
        "unreadable": 0,
        "pending": pending,
    }


def test_a_chip_predicted_twice_is_an_error(plan):
    outcome = outcome_for(plan)
    with pytest.raises(maps.DuplicateChipError, match="1 chip"):
        maps.chip_outcomes(plan, pd.concat([outcome, outcome.iloc[[5]]]))
    with pytest.raises(ValueError, match="not in the plan"):
        maps.chip_outcomes(plan.iloc[10:], outcome)


def test_class_raster_covers_the_plan_on_the_global_grid(plan, tmp_path):
    table = maps.chip_outcomes(plan, outcome_for(plan))
    grid = ChipGrid(64, 10.0)
    raster = maps.class_raster(table, "EPSG:32633", CLASSES, grid, {"run_id": "r1"})
    rows, cols = plan["row"].astype(int), plan["col"].astype(int)
    assert raster.classes.shape == (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
    # Pixel (0, 0) is the chip (row0, col0): its top-left corner is the transform's origin.
    minx, _, _, maxy = grid.bounds_of(int(rows.min()), int(cols.min()))
    assert (raster.transform.c, raster.transform.f, raster.transform.a) == (minx, maxy, 640.0)
    for record in table.itertuples():
        value = raster.classes[record.row - rows.min(), record.col - cols.min()]
        if record.status == "scored":
            assert value == (record.row + record.col) % 3
        else:
            assert value == NODATA

    dataset = ClassGeoTiffDataset(filepath=str(tmp_path / "classes.tif"))
    dataset.save(raster)
    with rasterio.open(tmp_path / "classes.tif") as written:
        assert written.crs.to_epsg() == 32633
        assert written.colormap(1)[0][:3] == (23, 112, 42)  # Forest's dark green
        assert written.tags()["run_id"] == "r1"
    loaded = dataset.load()
    np.testing.assert_array_equal(loaded.classes, raster.classes)
    assert loaded.class_names == tuple(CLASSES) and loaded.crs == "EPSG:32633"
    dataset.save(ClassRaster.empty(CLASSES))  # a later tile run leaves no stale map behind
    assert not (tmp_path / "classes.tif").exists()


def test_shares_and_geojson(plan):
    table = maps.chip_outcomes(plan, outcome_for(plan))
    shares = maps.shares_of_scored(table, CLASSES)
    scored = table[table["status"] == "scored"]
    assert shares["Forest"] == pytest.approx((scored["class_index"] == 0).mean())
    assert sum(shares.values()) == pytest.approx(1.0)
    collection = maps.chips_geojson(table, CLASSES)
    assert len(collection["features"]) == len(scored)
    feature = collection["features"][0]
    assert feature["properties"]["class"] in CLASSES
    lon, lat = feature["geometry"]["coordinates"][0][0]
    assert 15.6 < lon < 15.9 and 50.26 < lat < 50.37


def test_tiles_have_no_geometry(tmp_path):
    plan = plan_from_tiles([str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")], str(tmp_path), 10)
    outcome = pd.DataFrame(
        {"chip_id": ["a.jpg", "b.jpg"], "status": ["scored", "unreadable"],
         "class_index": [2.0, np.nan], "confidence": [0.7, np.nan]}
    )  # fmt: skip
    table = maps.chip_outcomes(plan, outcome)
    collection = maps.chips_geojson(table, CLASSES)
    assert collection["features"] == [
        {
            "type": "Feature",
            "id": "a.jpg",
            "geometry": None,
            "properties": {"chip_id": "a.jpg", "class": "SeaLake", "class_index": 2,
                           "confidence": 0.7},
        }
    ]  # fmt: skip
    assert maps.shares_of_scored(table, CLASSES) == {
        "Forest": 0.0,
        "Residential": 0.0,
        "SeaLake": 1.0,
    }


def _raster(table: pd.DataFrame, size: float = 640.0) -> ClassRaster:
    return maps.class_raster(table, maps.primary_crs(table), CLASSES, ChipGrid(64, size / 64), {})


def test_backdrop_grid_covers_the_map_and_caps_its_long_side():
    county = ClassRaster(np.zeros((2000, 3000), np.uint8), Affine(640, 0, 5e5, 0, -640, 6e6),
                         "EPSG:32633", tuple(CLASSES))  # fmt: skip
    transform, shape = maps.backdrop_grid(county)
    assert shape == (1000, 1500)  # under one preview pixel per chip, never more than 1500
    assert (transform.c, transform.f) == (5e5, 6e6)
    assert transform.a * shape[1] == 3000 * 640 and -transform.e * shape[0] == 2000 * 640
    small = ClassRaster(np.zeros((3, 4), np.uint8), Affine(640, 0, 0, 0, -640, 0), "EPSG:32633",
                        tuple(CLASSES))  # fmt: skip
    assert maps.backdrop_grid(small)[1] == (192, 256)  # 64 px per chip is plenty at figure size


def test_backdrop_is_the_scene_on_the_map_grid(plan):
    table = maps.chip_outcomes(plan, outcome_for(plan))
    raster = _raster(table)
    sources = maps.plan_sources(table, raster.crs)
    assert sources == [str(PART)]
    backdrop = maps.read_backdrop(raster, sources)
    transform, (height, width) = maps.backdrop_grid(raster)
    assert backdrop.shape == (height, width, 3) == (9 * 64, 15 * 64, 3)  # 10 m: the source's
    # pixel for pixel the part's own pixels under the map's extent, in the right place
    with rasterio.open(PART) as src:
        window = src.window(transform.c, transform.f + transform.e * height,
                            transform.c + transform.a * width, transform.f)  # fmt: skip
        direct = src.read(window=window)
    np.testing.assert_allclose(backdrop * 255, np.moveaxis(direct, 0, -1), atol=0.01)

    # One chip column further west than the part reaches: no imagery there (NaN), then the scene.
    wider = ClassRaster(np.zeros((9, 16), np.uint8), raster.transform @ Affine.translation(-1, 0),
                        raster.crs, tuple(CLASSES))  # fmt: skip
    backdrop = maps.read_backdrop(wider, sources)
    west = round((543100 - wider.transform.c) / 10)  # 38 px of 10 m west of the part's edge
    assert np.isnan(backdrop[:, :west]).all() and np.isfinite(backdrop[:, west:]).all()


@pytest.mark.skipif(not PISA.is_dir(), reason=f"OSCD Pisa not found: {PISA}")
def test_backdrop_of_a_16_bit_band_stack_in_another_crs():
    (stack,), _ = group_band_files(sorted(str(p) for p in PISA.glob("*.tif")))
    chips, problems = plan_chips_from_paths([stack], ChipGrid(64, 10.0))
    assert not problems
    table = maps.chip_outcomes(plan_from_chips(chips, chunk_size=512), pd.DataFrame(
        {"chip_id": [], "status": [], "class_index": [], "confidence": []}))  # fmt: skip
    raster = _raster(table)
    assert raster.crs == "EPSG:32632"  # planned in UTM, the files are lon/lat
    backdrop = maps.read_backdrop(raster, maps.plan_sources(table, raster.crs))
    valid = np.isfinite(backdrop).all(axis=-1)
    assert valid.mean() > 0.8
    assert backdrop[valid].min() >= 0 and backdrop[valid].max() <= 1
    assert backdrop[valid].std(axis=0).min() > 0.1  # a city, fields and a river, stretched


def test_map_figure_over_imagery_and_without(plan, tmp_path, caplog):
    table = maps.chip_outcomes(plan, outcome_for(plan))
    raster = _raster(table)
    figure = maps.raster_map_figure(raster, None, 640.0, "t", maps.plan_sources(table, raster.crs))
    assert [ax.get_title() for ax in figure.axes] == ["imagery", "classes over imagery (per chip)"]
    plt.close(figure)
    with caplog.at_level(logging.WARNING, logger=maps.__name__):
        figure = maps.raster_map_figure(raster, None, 640.0, "t", [str(tmp_path / "gone.tif")])
    assert len(figure.axes) == 1  # the classes alone: a figure never fails a run
    assert "No imagery under the map" in caplog.text and "gone.tif" in caplog.text
    plt.close(figure)
