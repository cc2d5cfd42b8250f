"""`train` end to end through a KedroSession on the 300-tile sample (plus deliberately bad tiles)."""

import json

import pytest
from conftest import versioned_path
from PIL import Image

pytestmark = pytest.mark.slow


def test_metrics_summary_covers_every_model(trained_project):
    summary = json.loads((trained_project / "data/08_reporting/metrics_summary.json").read_text())
    assert summary["featurizer"] == "efficientnet_lite0"
    assert summary["data_source"].endswith("tiles")
    for model in ("logistic_regression", "random_forest"):
        metrics = summary[model]
        assert metrics["n_test"] == 60  # 20 % of 30 tiles in each of 10 classes (+ gray.png in train)
        assert len(metrics["per_class"]) == 10
        # 240 training tiles of frozen ImageNet features separate EuroSAT classes well above chance (0.1).
        assert metrics["accuracy"] > 0.6, metrics["accuracy"]
        assert 0 < metrics["macro_f1"] <= 1


def test_bad_tiles_are_rejected_with_reasons_and_nothing_is_lost(trained_project, spark):
    rejected = {r["tile_id"]: r["reason"] for r in spark.read.parquet(str(trained_project / "data/02_intermediate/rejected_tiles")).collect()}
    assert set(rejected) == {"Forest/truncated.jpg", "River/empty.jpg", "SeaLake/notes.jpg"}
    assert rejected["River/empty.jpg"] == "empty file"
    assert rejected["SeaLake/notes.jpg"].startswith("not an image")
    features = spark.read.parquet(str(trained_project / "data/04_feature/features"))
    index = spark.read.parquet(str(trained_project / "data/02_intermediate/tile_index"))
    assert index.count() == 304  # seen
    assert features.count() + len(rejected) == index.count()  # featurized + rejected
    assert features.where("tile_id = 'Pasture/gray.png'").count() == 1
    assert features.select("featurizer").distinct().collect()[0][0] == "efficientnet_lite0"


def test_reports_and_models_are_written(trained_project):
    reporting = trained_project / "data/08_reporting/logistic_regression"
    confusion = json.loads((reporting / "confusion_matrix.json").read_text())
    assert len(confusion["classes"]) == 10 and sum(map(sum, confusion["matrix"])) == 60
    with Image.open(reporting / "confusion_matrix.png") as image:
        assert image.width > 400
    models = trained_project / "data/06_models"
    assert (versioned_path(models / "efficientnet_lite0/random_forest") / "metadata").is_dir()
    assert versioned_path(models / "featurizers/efficientnet_lite0.onnx").stat().st_size > 1_000_000
    spec = json.loads(versioned_path(models / "featurizers/efficientnet_lite0.json").read_text())
    assert spec["feature_dim"] == 1968 and spec["input_size"] == 160  # head + stage means 4-6 + deviations 5-6
