"""The map-product nodes, one per product, drawn from one table of a run over a real raster
(and over plain tiles), without Spark: each node's inputs are what `collect_map_table` returns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pystac
import pytest
import rasterio
import yaml
from conftest import PROJECT_ROOT, RASTERS
from matplotlib.figure import Figure
from rasterio.warp import transform_bounds

from aerial_kedro.chips.planning import plan_from_chips, plan_from_tiles
from aerial_kedro.chips.records import ModelDescription, ScoringRun
from aerial_kedro.chips.settings import ScoringSettings
from aerial_kedro.geo.chip_planning import plan_chips_from_paths
from aerial_kedro.geo.class_map import NODATA
from aerial_kedro.geo.grid import ChipGrid
from aerial_kedro.pipelines.scoring import maps, nodes

PART = RASTERS / "czech-2x2" / "czech_s2_tci_20220319.0.tif"
CLASSES = ["Forest", "Residential", "SeaLake"]
MODEL_INFO = ModelDescription(
    model="logistic_regression", model_version=None, classifier="LogisticRegression",
    classes=tuple(CLASSES), featurizer="efficientnet_lite0", model_key="uid|sha",
)  # fmt: skip


def settings_for(source: str) -> ScoringSettings:
    params = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_scoring.yml").read_text())
    scoring = {**params["scoring"], "model": "logistic_regression", "smoothing": True}
    return ScoringSettings.from_params(source, scoring)


def run_of(kind: str, source: str) -> ScoringRun:
    return ScoringRun(
        run_id=f"{kind}-3f2a9c1e", source=source, source_name=kind, kind=kind,
        n_items=2, n_chunks=1, n_inputs=1, n_rejected=0, radiometry=None, chip_stride_px=None,
        max_empty_fraction=0.5, radiometry_reference=None, radiometry_fit=None,
        started_at="2026-11-29T20:34:37+00:00",
    )  # fmt: skip


@pytest.fixture(scope="module")
def raster_products():
    """Every chip of the scene's north-west quarter scored (class (row + col) % 3) but two empty."""
    chips, _ = plan_chips_from_paths([str(PART)], ChipGrid(64, 10.0))
    plan = plan_from_chips(chips, chunk_size=16)
    status = np.where(np.arange(len(plan)) < 2, "empty", "scored")
    outcome = pd.DataFrame({
        "chip_id": plan["chip_id"].to_numpy(), "status": status,
        "class_index": ((plan["row"] + plan["col"]) % 3).astype(float).where(status == "scored"),
        "confidence": np.where(status == "scored", 0.9, np.nan),
    })  # fmt: skip
    table = maps.chip_outcomes(plan, outcome)
    counts = maps.status_counts(table)
    run, settings = run_of("rasters", str(PART)), settings_for(str(PART))
    raster, saved = nodes.make_class_raster(table, run, MODEL_INFO, settings)
    return {
        "table": table,
        "raster": raster,
        "saved": saved,
        "report": nodes.report_class_shares(table, counts, raster, run, MODEL_INFO, settings),
        "item": nodes.describe_map_products(raster, run, MODEL_INFO),
        "figure": nodes.draw_map_png(raster, table, counts, run, MODEL_INFO, settings),
    }


def test_one_raster_feeds_the_cog_the_report_and_the_item(raster_products):
    raster, report = raster_products["raster"], raster_products["report"]
    assert raster_products["saved"] is raster and raster.crs == "EPSG:32633"
    assert (raster.classes != NODATA).sum() == report["chips"]["scored"] == report["chips"][
        "planned"] - 2  # fmt: skip
    assert report["map"]["shape"] == list(raster.classes.shape)
    assert report["map"]["transform"] == list(raster.transform)[:6]
    assert sum(report["shares_smoothed"].values()) == pytest.approx(1.0)
    assert isinstance(raster_products["figure"], Figure)


def test_stac_item_describes_the_map_products_on_the_scene(raster_products):
    item = pystac.Item.from_dict(raster_products["item"])
    assert item.id == "rasters-3f2a9c1e"
    assert {key: asset.href for key, asset in item.assets.items()} == maps.MAP_PRODUCTS
    assert item.properties["aerial:model"] == "logistic_regression"
    assert item.properties["aerial:source"] == str(PART)
    assert item.datetime.isoformat() == "2026-11-29T20:34:37+00:00"
    raster = raster_products["raster"]
    rows, cols = raster.classes.shape
    left, top = raster.transform.c, raster.transform.f
    right, bottom = left + cols * raster.transform.a, top + rows * raster.transform.e
    expected = transform_bounds("EPSG:32633", "EPSG:4326", left, bottom, right, top)
    assert item.bbox == pytest.approx(expected, abs=1e-5)
    with rasterio.open(PART) as src:  # the map lies on the quarter it was planned on
        west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    assert west - 0.01 < item.bbox[0] < item.bbox[2] < east + 0.01
    assert south - 0.01 < item.bbox[1] < item.bbox[3] < north + 0.01


def test_tiles_get_no_raster_no_stac_item_and_a_shares_figure(tmp_path):
    plan = plan_from_tiles([str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")], str(tmp_path), 10)
    outcome = pd.DataFrame({"chip_id": ["a.jpg", "b.jpg"], "status": ["scored", "scored"],
                            "class_index": [2.0, 0.0], "confidence": [0.7, 0.8]})  # fmt: skip
    table = maps.chip_outcomes(plan, outcome)
    counts = maps.status_counts(table)
    run, settings = run_of("tiles", str(tmp_path)), settings_for(str(tmp_path))
    raster, saved = nodes.make_class_raster(table, run, MODEL_INFO, settings)
    assert not raster.is_georeferenced and saved is raster
    report = nodes.report_class_shares(table, counts, raster, run, MODEL_INFO, settings)
    assert report["shares"] == {"Forest": 0.5, "Residential": 0.0, "SeaLake": 0.5}
    assert "map" not in report and report["shares_smoothed"] is None
    assert nodes.describe_map_products(raster, run, MODEL_INFO) == maps.no_stac_item(run.run_id)
    assert "type" not in maps.no_stac_item("r")  # not a Feature: STAC readers refuse it
    assert isinstance(nodes.draw_map_png(raster, table, counts, run, MODEL_INFO, settings), Figure)
    assert nodes.make_chips_geojson(table, MODEL_INFO)["features"][0]["geometry"] is None


def test_the_report_and_the_index_entry_keep_their_keys_and_values(raster_products):
    """What class_shares.json and maps/index.json held when the run and model were dicts."""
    report = raster_products["report"]
    assert list(report)[:15] == [
        "run_id", "source", "kind", "model", "model_version", "classifier", "featurizer",
        "classes", "chips", "complete", "rejected_rasters", "radiometry", "shares", "smoothing",
        "shares_smoothed",
    ]  # fmt: skip
    assert {key: report[key] for key in ("run_id", "source", "kind", "model", "model_version",
                                         "classifier", "featurizer", "classes",
                                         "rejected_rasters", "radiometry")} == {
        "run_id": "rasters-3f2a9c1e", "source": str(PART), "kind": "rasters",
        "model": "logistic_regression", "model_version": None, "classifier": "LogisticRegression",
        "featurizer": "efficientnet_lite0", "classes": CLASSES, "rejected_rasters": 0,
        "radiometry": None,
    }  # fmt: skip
    assert type(report["classes"]) is list
    run = run_of("rasters", str(PART))
    entry = nodes.index_map_products(run, MODEL_INFO, report, raster_products["item"])
    assert entry == {
        "source": str(PART), "source_name": "rasters", "run_id": "rasters-3f2a9c1e",
        "kind": "rasters", "georeferenced": True, "model": "logistic_regression",
        "model_version": None, "featurizer": "efficientnet_lite0",
        "scored_at": "2026-11-29T20:34:37+00:00", "complete": True, "chips": report["chips"],
    }  # fmt: skip
