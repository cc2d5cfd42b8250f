"""Predict the test split, score it, and summarise every model of the run."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

from matplotlib.figure import Figure
from pyspark.ml import PipelineModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from aerial_kedro.models.contract import class_names, classifier_name
from aerial_kedro.models.features import select_split
from aerial_kedro.pipelines.evaluation.metrics import classification_metrics, confusion_from_counts
from aerial_kedro.pipelines.evaluation.plots import plot_confusion_matrix

logger = logging.getLogger(__name__)


def model_classes(model: PipelineModel) -> list[str]:
    """Class names in the model's label-index order (:mod:`aerial_kedro.models.contract`)."""
    return class_names(model)


def predict_test_split(classifier_model: PipelineModel, features: DataFrame, featurizer: str) -> DataFrame:
    """tile_id, source, label, predicted_label, probability (array, in ``model_classes`` order)."""
    test = select_split(features, featurizer, "test")
    source = F.col("source") if "source" in test.columns else F.lit("tiles")
    return classifier_model.transform(test).select(
        "tile_id",
        source.alias("source"),
        "label",
        "predicted_label",
        vector_to_array(F.col("probability")).alias("probability"),
    )


def evaluate_predictions(
    test_predictions: DataFrame, classifier_model: PipelineModel, featurizer: str
) -> tuple[dict, dict, Figure]:
    """Metrics JSON, confusion matrix JSON and its figure; only a (classes x classes) summary reaches the driver."""
    classes = model_classes(classifier_model)
    by_source = "source" in test_predictions.columns
    keys = ["source", "label", "predicted_label"] if by_source else ["label", "predicted_label"]
    rows = test_predictions.groupBy(*keys).count().collect()
    unknown = sorted({row["label"] for row in rows} - set(classes))
    if unknown:
        raise ValueError(f"Test labels unseen in training: {', '.join(unknown)}")
    matrix = confusion_from_counts(((r["label"], r["predicted_label"], r["count"]) for r in rows), classes)
    metrics = classification_metrics(matrix, classes)
    if by_source:
        # Tiles and reference chips of the user's scene answer different questions: report both.
        metrics["by_source"] = {
            source: classification_metrics(
                confusion_from_counts(
                    ((r["label"], r["predicted_label"], r["count"]) for r in rows if r["source"] == source),
                    classes,
                ),
                classes,
            )
            for source in sorted({r["source"] for r in rows})
        }
    metrics["classifier"] = classifier_name(classifier_model)
    metrics["featurizer"] = featurizer
    confusion = {"classes": classes, "matrix": matrix.tolist(), "rows": "true", "columns": "predicted"}
    title = f"{metrics['classifier']} on {featurizer}: accuracy {metrics['accuracy']:.3f}"
    return metrics, confusion, plot_confusion_matrix(matrix, classes, title)


def summarize_metrics(featurizer: str, tiles_dir: str, **model_metrics: dict) -> dict:
    """metrics_summary.json: every model's headline figures plus the featurizer and data source."""
    summary: dict[str, Any] = {
        name: {key: metrics[key] for key in ("accuracy", "macro_f1", "n_test", "per_class")}
        for name, metrics in sorted(model_metrics.items())
    }
    summary["featurizer"] = featurizer
    summary["data_source"] = str(tiles_dir)
    summary["created_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    table = "  ".join(
        f"{name}: acc {metrics['accuracy']:.4f} macro-F1 {metrics['macro_f1']:.4f}"
        for name, metrics in sorted(model_metrics.items())
    )
    logger.info("Models on %s (%s, n_test=%d) | %s", featurizer, tiles_dir,
                next(iter(model_metrics.values()))["n_test"] if model_metrics else 0, table)
    return summary
