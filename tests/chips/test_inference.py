"""Chips and tiles scored inside Spark tasks equal a bare onnxruntime loop; statuses and classifier."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from conftest import SHARED_DATA as DATA

from aerial_kedro.chips.inference import (
    chip_from_row,
    classify,
    classify_items_spark,
    dihedral,
    featurize_items,
    featurize_items_spark,
    plan_frame,
)
from aerial_kedro.chips.planning import (
    PlanSettings,
    plan_from_chips,
    plan_from_tiles,
    plan_source,
    task_sizes,
)
from aerial_kedro.chips.records import ChipReading
from aerial_kedro.featurizers.decode import decode_tile
from aerial_kedro.featurizers.runner import OnnxFeaturizer
from aerial_kedro.geo.chip_planning import Chip, plan_chips_from_paths
from aerial_kedro.geo.chip_reader import ChipReader
from aerial_kedro.geo.grid import ChipGrid
from aerial_kedro.geo.radiometry import to_uint8
from aerial_kedro.models.contract import predictor
from aerial_kedro.models.linear_head import head_of
from aerial_kedro.pipelines.modeling.nodes import train_classifier

PART = DATA / "rasters" / "czech-2x2" / "czech_s2_tci_20220319.0.tif"
TILE_CLASSES = ("Forest", "Residential", "SeaLake")
READING = ChipReading(batch_size=8, threads=1, max_empty_fraction=0.5)


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
    items = plan_frame(spark, plan, task_sizes(len(plan), slots=2, tasks_per_slot=3))
    broadcast = spark.sparkContext.broadcast(onnx_bytes)
    frame = featurize_items_spark(items, broadcast, spec, READING)
    return frame.toPandas().set_index("chip_id")


def test_plan_frame_gives_each_task_its_contiguous_slice(spark, plan):
    sizes = task_sizes(len(plan), slots=2, tasks_per_slot=3)
    assert sizes == [8, 8, 4, 4, 4, 4]
    items = plan_frame(spark, plan, sizes)
    partitions = items.rdd.glom().map(lambda rows: [row.seq for row in rows]).collect()
    ends = np.cumsum(sizes).tolist()
    assert partitions == [list(range(a, b)) for a, b in zip([0, *ends[:-1]], ends, strict=True)]
    with pytest.raises(ValueError, match="add up to 31, not to the 32 plan rows"):
        plan_frame(spark, plan, [16, 15])


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


def test_classifying_in_the_worker_gives_the_jvm_rows(spark, plan, efficientnet_lite0, tile_classifier):
    """The same plan rows through both paths: every column equal; probabilities to the float32
    rounding both keep (the head computes in float64 as the JVM does, only summing in another
    order: tests/models/test_linear_head.py)."""
    onnx_bytes, spec = efficientnet_lite0
    items = plan_frame(spark, plan, task_sizes(len(plan), slots=2, tasks_per_slot=3))
    onnx = spark.sparkContext.broadcast(onnx_bytes)
    head = head_of(tile_classifier).head
    assert head is not None
    names = {"model_name": "lr", "featurizer_name": "f"}
    classes = list(TILE_CLASSES)
    worker = classify_items_spark(
        items, onnx, spark.sparkContext.broadcast(head), spec, READING, classes=classes, **names
    ).toPandas().set_index("chip_id").sort_index()
    jvm = classify(
        featurize_items_spark(items, onnx, spec, READING), predictor(tile_classifier), classes, **names
    ).toPandas().set_index("chip_id").sort_index()

    assert list(worker.columns) == list(jvm.columns)
    assert (worker["status"] == "scored").sum() == len(plan) - 7  # 6 empty chips, 1 broken tile
    scored = worker["status"] == "scored"
    ours = np.stack(worker.loc[scored, "probabilities"])
    theirs = np.stack(jvm.loc[scored, "probabilities"])
    assert ours.dtype == theirs.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1.2e-7)  # 1 float32 ulp at 1.0
    close = ["probabilities", "confidence", "entropy"]
    for column in close:
        assert worker[column].isna().equals(jvm[column].isna())
    np.testing.assert_allclose(worker.loc[scored, "entropy"], jvm.loc[scored, "entropy"], atol=1e-6)
    pd.testing.assert_frame_equal(worker.drop(columns=close), jvm.drop(columns=close))
    assert worker.loc[scored, "predicted_label"].nunique() > 1


def test_cloud_fraction_is_set_for_read_items_only(featurized):
    scored = featurized[featurized["status"] == "scored"]
    assert scored["cloud_fraction"].between(0, 1).all()
    assert featurized.loc[featurized["status"] != "scored", "cloud_fraction"].isna().all()
    assert (featurized["augment"] == 0).all()


def test_dihedral_transforms_are_the_eight_symmetries_of_the_square():
    chip = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    variants = [dihedral(chip, index) for index in range(8)]
    assert len({v.tobytes() for v in variants}) == 8
    np.testing.assert_array_equal(variants[0], chip)
    np.testing.assert_array_equal(variants[1], np.rot90(chip))
    np.testing.assert_array_equal(variants[4], chip[:, ::-1])
    np.testing.assert_array_equal(dihedral(variants[2], 2), chip)  # 180 + 180
    np.testing.assert_array_equal(dihedral(variants[4], 4), chip)  # a mirror undoes itself
    assert all(v.shape == chip.shape and v.flags.c_contiguous for v in variants)
    with pytest.raises(ValueError, match="outside 0-7"):
        dihedral(chip, 8)


PISA = DATA / "oscd" / "pisa" / "imgs_1"


@pytest.fixture(scope="module")
def pisa_plan() -> tuple[pd.DataFrame, object]:
    """Six chips of the OSCD Pisa scene (uint16 band files, EPSG:4326): one edge, five inside."""
    plan, problems, radiometry = plan_source(str(PISA), PlanSettings(chunk_size=4))
    assert not problems and radiometry.name == "sentinel2_l1c"
    return plan.iloc[[0, 40, 41, 70, 71, 100]].reset_index(drop=True), radiometry


def test_augmented_uint16_chips_give_eight_rows_of_their_dihedral_features(
    spark, pisa_plan, efficientnet_lite0
):
    plan, radiometry = pisa_plan
    onnx_bytes, spec = efficientnet_lite0
    items = plan_frame(spark, plan, task_sizes(len(plan), slots=2, tasks_per_slot=1))
    broadcast = spark.sparkContext.broadcast(onnx_bytes)
    reading = replace(READING, batch_size=16, radiometry=radiometry)
    augmented = featurize_items_spark(
        items, broadcast, spec, replace(reading, augment=True)
    ).toPandas()
    plain = featurize_items_spark(items, broadcast, spec, reading)
    plain = plain.toPandas().set_index("chip_id")
    assert (plain["status"] == "scored").all() and (plain["augment"] == 0).all()
    assert len(augmented) == 8 * len(plan)
    per_chip = augmented.groupby("chip_id")["augment"].agg(sorted)
    assert len(per_chip) == len(plan) and all(v == list(range(8)) for v in per_chip)

    # Reference: bare ChipReader + conversion + dihedral + onnxruntime.
    featurizer = OnnxFeaturizer(onnx_bytes, spec)
    with ChipReader() as reader:
        chip = chip_from_row(plan.iloc[1].to_dict())
        pixels = to_uint8(reader.read(chip), radiometry)
    reference = featurizer.features([dihedral(pixels, k) for k in range(8)])
    ours = augmented[augmented["chip_id"] == chip.chip_id].sort_values("augment")
    np.testing.assert_allclose(np.stack(ours["features"].to_list()), reference, atol=1e-4)
    np.testing.assert_allclose(plain.loc[chip.chip_id, "features"], reference[0], atol=1e-4)
    assert not np.allclose(reference[0], reference[1], atol=1e-3)  # a rotation changes features
    # One cloud fraction per chip, repeated on its 8 rows; Pisa in August is cloud-free.
    assert (ours["cloud_fraction"] == plain.loc[chip.chip_id, "cloud_fraction"]).all()
    assert plain["cloud_fraction"].max() < 0.1


def test_uint16_chips_without_a_conversion_are_unreadable(pisa_plan, efficientnet_lite0):
    plan, radiometry = pisa_plan
    onnx_bytes, spec = efficientnet_lite0
    with ChipReader() as reader:
        out = featurize_items(plan.head(2), reader, OnnxFeaturizer(onnx_bytes, spec), 8, 0.5)
    assert set(out["status"]) == {"unreadable"}
    assert out["reason"].iloc[0] == "uint16 pixels and no radiometric conversion"
    # "auto" resolves per chip by dtype, like planning: uint16 -> Sentinel-2 L1C.
    with ChipReader() as reader:
        auto = featurize_items(
            plan.head(2), reader, OnnxFeaturizer(onnx_bytes, spec), 8, 0.5, "auto"
        )
        declared = featurize_items(
            plan.head(2), reader, OnnxFeaturizer(onnx_bytes, spec), 8, 0.5, radiometry
        )
    assert set(auto["status"]) == {"scored"}
    np.testing.assert_allclose(np.stack(auto["features"]), np.stack(declared["features"]))
