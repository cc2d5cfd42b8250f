"""Training weights of reference chips beside tile folders (combine_features)."""

from __future__ import annotations

import pytest

from aerial_kedro.pipelines.reference.nodes import class_balanced_weights, combine_features

ROWS = "tile_id string, label string, split string, features array<float>"


def _tiles(spark, n_train: int):
    rows = [(f"t{i}", "Forest", "train", [0.0]) for i in range(n_train)]
    return spark.createDataFrame([*rows, ("t-test", "Forest", "test", [0.0])], ROWS)


def _chips(spark, per_class: dict[str, int]):
    rows = [
        (f"{label}-{i}", label, "train", [1.0])
        for label, count in per_class.items()
        for i in range(count)
    ]
    return spark.createDataFrame([*rows, ("test-chip", "forest", "test", [1.0])], ROWS)


def _weights(frame) -> dict[tuple[str, str], float]:
    totals: dict[tuple[str, str], float] = {}
    for row in frame.where("source = 'reference'").collect():
        key = (row["label"], row["split"])
        totals[key] = totals.get(key, 0.0) + row["weight"]
    return totals


def test_each_reference_class_weighs_the_same_and_the_total_is_kept(spark):
    tiles, chips = _tiles(spark, 300), _chips(spark, {"cropland": 130, "forest": 10, "built": 10})
    plain = _weights(combine_features(tiles, chips, {"weight": "balanced", "class_balance": False}))
    balanced = _weights(combine_features(tiles, chips, {"weight": "balanced", "class_balance": True}))

    # balanced weight: the 150 training chips together weigh as much as the 300 training tiles.
    assert sum(v for (_, split), v in plain.items() if split == "train") == pytest.approx(300)
    assert plain[("cropland", "train")] == pytest.approx(13 * plain[("forest", "train")])
    trained = {label: v for (label, split), v in balanced.items() if split == "train"}
    assert trained == pytest.approx({"cropland": 100.0, "forest": 100.0, "built": 100.0})
    assert balanced[("forest", "test")] == plain[("forest", "test")]  # test rows untouched


def test_a_fixed_weight_is_shared_out_by_class_too(spark):
    chips = _chips(spark, {"cropland": 30, "forest": 10}).withColumn("weight", _lit(2.0))
    rows = {row["label"]: row["weight"] for row in class_balanced_weights(chips).where("split = 'train'").collect()}
    assert rows == pytest.approx({"cropland": 2.0 * 40 / (2 * 30), "forest": 2.0 * 40 / (2 * 10)})


def _lit(value: float):
    from pyspark.sql import functions as F

    return F.lit(value)
