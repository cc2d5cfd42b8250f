"""Chips and tiles scored inside Spark tasks equal a bare onnxruntime loop; statuses and classifier."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio

from aerial_kedro.featurizers.decode import decode_tile
from aerial_kedro.featurizers.runner import OnnxFeaturizer
from aerial_kedro.geo.chip_grid import Chip, ChipGrid, ChipReader, plan_chips_from_paths
from aerial_kedro.pipelines.modeling.nodes import train_classifier
from aerial_kedro.pipelines.scoring.chip_inference import (
    classify,
    featurize_items_spark,
)
from aerial_kedro.pipelines.scoring.planning import (
    PLAN_SCHEMA,
    plan_from_chips,
    plan_from_tiles,
    plan_records,
)

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
PART = DATA / "rasters" / "czech-2x2" / "czech_s2_tci_20220319.0.tif"
TILE_CLASSES = ("Forest", "Residential", "SeaLake")


@pytest.fixture(scope="module")
def raster_with_black_corner(tmp_path_factory) -> Path:
    """Part 0 of the 2x2 split with its top-left 200 x 200 px set to 0 (like nodata fill)."""
    path = tmp_path_factory.mktemp("rasters") / "black_corner.tif"
    with rasterio.open(PART) as src:
        pixels, profile = src.read(), src.profile
    pixels[:, :200, :200] = 0
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(pixels)
    return path


@pytest.fixture(scope="module")
def plan(raster_with_black_corner, sample_tiles, tmp_path_factory) -> pd.DataFrame:
    chips, problems = plan_chips_from_paths([str(raster_with_black_corner)], ChipGrid(64, 10.0))
    assert not problems
    broken = tmp_path_factory.mktemp("tiles") / "broken.jpg"
    broken.write_bytes((sample_tiles / "Forest" / "Forest_1.jpg").read_bytes()[:200])
    tiles = [str(sample_tiles / "Forest" / "Forest_2.jpg"), str(broken)]
    chip_rows = plan_from_chips(chips[:30], chunk_size=10)
    tile_rows = plan_from_tiles(tiles, str(sample_tiles), chunk_size=10).assign(
        chunk=3, seq=[30, 31]
    )
    return pd.concat([chip_rows, tile_rows], ignore_index=True)


@pytest.fixture(scope="module")
def featurized(spark, plan, efficientnet_lite0) -> pd.DataFrame:
    onnx_bytes, spec = efficientnet_lite0
    items = spark.createDataFrame(
        spark.sparkContext.parallelize(plan_records(plan), 3), PLAN_SCHEMA
    )
    broadcast = spark.sparkContext.broadcast(onnx_bytes)
    frame = featurize_items_spark(
        items, broadcast, spec, batch_size=8, threads=1, max_empty_fraction=0.5, bands=[1, 2, 3]
    )
    return frame.toPandas().set_index("chip_id")


def test_every_item_gets_one_row_with_a_status(plan, featurized):
    assert sorted(featurized.index) == sorted(plan["chip_id"])
    # Chips more than half inside the black 2000 m corner are empty; the tile decodes, the broken not.
    chips = plan[plan["kind"] == "chip"]
    overlap_x = (chips["maxx"].clip(upper=543100 + 2000) - chips["minx"]).clip(lower=0)
    overlap_y = (chips["maxy"] - chips["miny"].clip(lower=5579500 - 2000)).clip(lower=0)
    black = chips[overlap_x * overlap_y / 640**2 > 0.5]
    assert len(black) == 6  # 2 rows x 3 columns of the chip grid
    assert set(featurized.loc[black["chip_id"], "status"]) == {"empty"}
    assert featurized.loc["Forest/Forest_2.jpg", "status"] == "scored"
    broken = featurized.filter(like="broken.jpg", axis=0).iloc[0]
    assert broken["status"] == "unreadable" and broken["reason"].startswith("corrupt image")
    assert featurized["status"].value_counts()["scored"] == len(plan) - len(black) - 1


def test_features_equal_a_bare_onnxruntime_loop(plan, featurized, efficientnet_lite0, sample_tiles):
    onnx_bytes, spec = efficientnet_lite0
    scored_chips = plan[(plan["kind"] == "chip")].set_index("chip_id")
    scored_chips = scored_chips[featurized.loc[scored_chips.index, "status"] == "scored"]
    with ChipReader() as reader:
        pixels = [
            reader.read(Chip.from_dict(row))
            for row in scored_chips.reset_index().to_dict("records")
        ]
    pixels.append(decode_tile((sample_tiles / "Forest" / "Forest_2.jpg").read_bytes()))
    reference = OnnxFeaturizer(onnx_bytes, spec).features(pixels, batch_size=16)
    ids = [*scored_chips.index, "Forest/Forest_2.jpg"]
    ours = np.stack([np.asarray(featurized.loc[chip_id, "features"]) for chip_id in ids])
    np.testing.assert_allclose(ours, reference, atol=1e-4)
    empty = featurized[featurized["status"] != "scored"]
    assert all(not np.any(vector) for vector in empty["features"])


@pytest.fixture(scope="module")
def tile_classifier(spark, sample_tiles, efficientnet_lite0):
    """A real logistic regression on lite0 features of 3 x 10 sample tiles."""
    onnx_bytes, spec = efficientnet_lite0
    paths = [p for name in TILE_CLASSES for p in sorted((sample_tiles / name).glob("*.jpg"))[:10]]
    vectors = OnnxFeaturizer(onnx_bytes, spec).features(
        [decode_tile(p.read_bytes()) for p in paths]
    )
    rows = [
        (p.name, p.parent.name, "train", v.tolist(), "f")
        for p, v in zip(paths, vectors, strict=True)
    ]
    features = spark.createDataFrame(
        rows, "tile_id string, label string, split string, features array<float>, featurizer string"
    )
    classifier = {
        "type": "logistic_regression",
        "standardize": True,
        "hyperparameters": {"maxIter": 50},
    }
    return train_classifier(features, "f", classifier, 7)


def test_classify_fills_predictions_for_scored_rows_only(spark, featurized, tile_classifier):
    frame = spark.createDataFrame(featurized.reset_index()[["chip_id", *featurized.columns]])
    predictions = (
        classify(frame, tile_classifier, list(TILE_CLASSES), model_name="lr", featurizer_name="f")
        .toPandas()
        .set_index("chip_id")
    )

    scored = predictions[predictions["status"] == "scored"]
    others = predictions[predictions["status"] != "scored"]
    assert (
        others[["predicted_label", "class_index", "confidence", "probabilities", "entropy"]]
        .isna()
        .all()
        .all()
    )
    assert all(list(classes) == list(TILE_CLASSES) for classes in predictions["classes"])
    for row in scored.itertuples():
        probabilities = np.asarray(row.probabilities, dtype=float)
        assert probabilities.sum() == pytest.approx(1.0, abs=1e-5)
        assert TILE_CLASSES[int(row.class_index)] == row.predicted_label
        assert row.confidence == pytest.approx(probabilities.max())
        expected = -sum(p * math.log(p) for p in probabilities if p > 0)
        assert row.entropy == pytest.approx(expected, abs=1e-5)
    assert scored.loc["Forest/Forest_2.jpg", "predicted_label"] == "Forest"
    assert set(predictions["model"]) == {"lr"} and set(predictions["featurizer"]) == {"f"}
