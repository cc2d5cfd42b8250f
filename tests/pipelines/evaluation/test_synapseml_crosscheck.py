"""The project's evaluation against SynapseML's ComputeModelStatistics on the same predictions.

Models trained by `train` on the 300-tile sample, plus the opt-in `lightgbm` namespace run through
Kedro on the same features.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from blob.azurite import require
from conftest import JAR_CACHE
from kedro.framework.context import KedroContext
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.runner import SequentialRunner
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from aerial_kedro.models.namespaces import MODEL_NAMESPACES, SYNAPSEML_MODEL_NAMESPACES
from aerial_kedro.pipelines.evaluation.nodes import evaluate_predictions, predict_test_split
from aerial_kedro.pipelines.modeling.pipeline import create_pipeline

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def synapseml_jars() -> None:
    """Skip without SynapseML's jars (fail in CI, where set-up fetches them)."""
    require(JAR_CACHE / "synapseml", "bash scripts/fetch_synapseml_jars.sh")


def synapseml_statistics(predictions: DataFrame, classes: list[str]) -> tuple[float, np.ndarray]:
    """(accuracy, confusion matrix) from SynapseML's ComputeModelStatistics on string labels."""
    from synapse.ml.train import ComputeModelStatistics

    position = F.create_map(*[item for index, name in enumerate(classes) for item in (F.lit(name), F.lit(float(index)))])
    indexed = predictions.select(position[F.col("label")].alias("y"), position[F.col("predicted_label")].alias("y_hat"))
    statistics = ComputeModelStatistics(evaluationMetric="classification", labelCol="y", scoredLabelsCol="y_hat")
    row = statistics.transform(indexed).first()
    return float(row["accuracy"]), row["confusion_matrix"].toArray()


@pytest.mark.parametrize("model", MODEL_NAMESPACES)
def test_train_metrics_equal_compute_model_statistics(trained_project, spark, model):
    reporting = trained_project / "data/08_reporting" / model
    metrics = json.loads((reporting / "metrics.json").read_text())
    confusion = json.loads((reporting / "confusion_matrix.json").read_text())
    predictions = spark.read.parquet(str(trained_project / "data/07_model_output/efficientnet_lite0" / model / "test_predictions"))
    accuracy, matrix = synapseml_statistics(predictions, confusion["classes"])
    assert accuracy == pytest.approx(metrics["accuracy"], abs=1e-12)
    assert np.array_equal(matrix, np.asarray(confusion["matrix"]))


def run_model_namespaces(project: Path, models: tuple[str, ...]) -> KedroContext:
    """Train ``models`` through Kedro (catalog, parameters, namespaces) on ``project``'s features."""
    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="local") as session:
        context = session.load_context()
    SequentialRunner().run(create_pipeline(models=models), context.catalog)
    return context


def test_lightgbm_namespace_trains_on_sample_features_and_evaluates_like_synapseml(trained_project, spark):
    context = run_model_namespaces(trained_project, SYNAPSEML_MODEL_NAMESPACES)
    model = context.catalog.load("lightgbm.classifier_model")
    features = context.catalog.load("features")
    predictions = predict_test_split(model, features, "efficientnet_lite0").cache()
    metrics, confusion, figure = evaluate_predictions(predictions, model, "efficientnet_lite0")
    figure.clf()
    print(f"lightgbm on the 300-tile sample: accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}")
    assert metrics["classifier"] == "LightGBMClassificationModel" and metrics["n_test"] == 60
    assert metrics["accuracy"] > 0.6, metrics["accuracy"]
    accuracy, matrix = synapseml_statistics(predictions, confusion["classes"])
    assert accuracy == pytest.approx(metrics["accuracy"], abs=1e-12)
    assert np.array_equal(matrix, np.asarray(confusion["matrix"]))
