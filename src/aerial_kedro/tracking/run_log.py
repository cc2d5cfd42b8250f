"""What one pipeline run records in MLflow: ``RunLog``.

The parent run is the one kedro-mlflow opened; what is logged is keyed on the datasets saved
(``tile_index``, ``tile_features``, ``rejected_tiles``, ``metrics_summary``,
``<model>.classifier_model``, ``<model>.metrics``, ...), so renaming or splitting a node keeps its
logging:

- the parent run: tile counts (params), featurize seconds and tiles/s, wall time, each model's
  accuracy and macro-F1, ``metrics_summary.json``;
- one child run per classifier namespace, nested under the parent and tagged ``featurizer`` and
  ``classifier``: the classifier's parameters, accuracy, macro-F1, per-class precision/recall/F1,
  training seconds, the confusion matrix (PNG + JSON), the metrics JSON and the fitted
  PipelineModel as an MLflow Model of the spark flavour (``mlflow.spark.load_model(
  "runs:/<child>/model")`` reads it, wherever the catalog stores it; the catalog path is tagged).

Logging goes through an ``MlflowClient`` with explicit run ids, so it does not depend on MLflow's
thread-local "active run" once the parent run is known. Every parameter value and the model path
tag go through ``redact_url``; every run is tagged with its owner process (``owner_tags``).
"""

from __future__ import annotations

import re
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kedro.pipeline.node import Node
from mlflow.entities import Metric, Param, RunStatus
from mlflow.tracking import MlflowClient

from aerial_kedro.blob.urls import redact_url
from aerial_kedro.tracking.stale_runs import owner_tags

# The outputs the run history reads, by dataset name: whichever node saves them (renamed, split,
# moved to another namespace) is logged the same. ``<model>.<output>`` belongs to a classifier
# namespace, i.e. a ``<model>`` parameter block with a ``classifier`` key.
TILE_INDEX = "tile_index"
TILE_FEATURES = "tile_features"
REJECTED_TILES = "rejected_tiles"
METRICS_SUMMARY = "metrics_summary"
CLASSIFIER_MODEL = "classifier_model"
MODEL_METRICS = "metrics"
CONFUSION_MATRIX = "confusion_matrix"
CONFUSION_MATRIX_PLOT = "confusion_matrix_plot"
MODEL_ARTIFACT = "model"  # the child run's MLflow Model (spark flavour): runs:/<child>/model
_UNSAFE_KEY = re.compile(r"[^\w./ -]")


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``."""
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def metric_key(name: str) -> str:
    """A name MLflow accepts as a metric/param key (letters, digits, ``_ - . / space``)."""
    return _UNSAFE_KEY.sub("_", name)


def evaluation_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Headline and per-class numbers of one ``<model>.metrics`` dict as flat MLflow metrics."""
    flat = {key: float(metrics[key]) for key in ("accuracy", "macro_f1", "n_test")}
    for class_name, scores in metrics["per_class"].items():
        for score in ("precision", "recall", "f1"):
            flat[metric_key(f"{score}.{class_name}")] = float(scores[score])
    return flat


def _params(values: Mapping[str, Any]) -> list[Param]:
    return [Param(metric_key(key), redact_url(str(value))) for key, value in values.items()]


def _metrics(values: Mapping[str, float]) -> list[Metric]:
    now = int(time.time() * 1000)
    return [Metric(metric_key(key), float(value), now, 0) for key, value in values.items()]


def spark_model_requirements() -> list[str]:
    """pip requirements of a logged Spark model, stated so that MLflow infers none.

    Inference reloads the model in a subprocess and may query PyPI; the model needs only the
    pyspark it was fitted with (MLflow adds its own pin).
    """
    import pyspark

    return [f"pyspark=={pyspark.__version__}"]


def log_spark_model(client: MlflowClient, run_id: str, model: Any, artifact_path: str = MODEL_ARTIFACT) -> None:
    """Log a fitted Spark ``PipelineModel`` as an MLflow Model (spark flavour) of run ``run_id``.

    ``mlflow.spark.load_model(f"runs:/{run_id}/{artifact_path}")`` reads it back. Saved with
    ``mlflow.spark.save_model`` and uploaded with the client rather than ``mlflow.spark.log_model``,
    which logs into the thread's active run: the child runs are never the active run.
    """
    import mlflow.spark

    with tempfile.TemporaryDirectory(prefix="aerial_kedro_model_") as folder:
        local = Path(folder) / artifact_path
        mlflow.spark.save_model(model, str(local), pip_requirements=spark_model_requirements())
        client.log_artifacts(run_id, str(local), artifact_path)


class RunLog:
    """What one pipeline run logs: the parent run kedro-mlflow opened and a child run per model.

    What is logged follows from the datasets saved (``dataset_saved``), never from node names.
    """

    def __init__(self, client: MlflowClient, parent_run_id: str, experiment_id: str,
                 parameters: Mapping[str, Any], catalog: Any) -> None:
        self.client = client
        self.parent = parent_run_id
        self.experiment_id = experiment_id
        self.parameters = parameters
        self.catalog = catalog
        self.children: dict[str, str] = {}
        self._lock = threading.Lock()
        self._started: dict[str, float] = {}
        self._seconds: dict[str, float] = {}
        self._tile_counts: dict[str, int] = {}
        self._featurize_seconds: float | None = None
        self._pipeline_started = time.perf_counter()

    @property
    def featurizer(self) -> str:
        return str(self.parameters.get("featurizer", "unknown"))

    def describe_parent(self, run_name: str, pipeline_names: list[str]) -> None:
        """Tag the owner process and the featurizer; name a default-named run ``train efficientnet_lite0``."""
        for key, value in owner_tags().items():
            self.client.set_tag(self.parent, key, value)
        self.client.set_tag(self.parent, "featurizer", self.featurizer)
        if run_name == "+".join(pipeline_names):
            self.client.set_tag(self.parent, "mlflow.runName", f"{run_name} {self.featurizer}")

    def node_started(self, node: Node) -> None:
        self._started[node.name] = time.perf_counter()

    def node_finished(self, node: Node) -> None:
        """Fix the node's compute time (its outputs are saved after ``after_node_run``)."""
        self._seconds[node.name] = self.node_seconds(node)

    def node_seconds(self, node: Node) -> float:
        if node.name in self._seconds:
            return self._seconds[node.name]
        return time.perf_counter() - self._started.get(node.name, time.perf_counter())

    def is_classifier(self, model: str) -> bool:
        """True when ``model`` is a classifier namespace (its parameters hold a ``classifier`` block)."""
        block = self.parameters.get(model)
        return isinstance(block, Mapping) and isinstance(block.get("classifier"), Mapping)

    def dataset_saved(self, dataset_name: str, data: Any, node: Node) -> None:
        """Log what the saved dataset tells; datasets the run history does not read are ignored."""
        if dataset_name == TILE_INDEX:
            self.log_tile_index(data)
        elif dataset_name in (TILE_FEATURES, REJECTED_TILES):
            self.log_tile_count(dataset_name, data.count(), self.node_seconds(node))
        elif dataset_name == METRICS_SUMMARY:
            self.log_summary(data)
        else:
            model, _, output = dataset_name.rpartition(".")
            if not model or not self.is_classifier(model):
                return
            if output == CLASSIFIER_MODEL:
                self.log_model(model, dataset_name, data, self.node_seconds(node))
            elif output == MODEL_METRICS:
                self.log_metrics(model, data)
            elif output == CONFUSION_MATRIX:
                self.client.log_dict(self.child(model), dict(data), "confusion_matrix.json")
            elif output == CONFUSION_MATRIX_PLOT:
                self.client.log_figure(self.child(model), data, "confusion_matrix.png")

    def child(self, model: str) -> str:
        """The child run of a classifier namespace, created (with its parameters) on first use."""
        with self._lock:
            if model not in self.children:
                self.children[model] = self._create_child(model)
            return self.children[model]

    def _create_child(self, model: str) -> str:
        classifier = dict(self.parameters.get(model, {}).get("classifier", {}))
        tags = {
            "mlflow.parentRunId": self.parent,
            "featurizer": self.featurizer,
            "classifier": str(classifier.get("type", model)),
            "model_namespace": model,
            **owner_tags(),
        }
        run = self.client.create_run(self.experiment_id, tags=tags, run_name=f"{model} on {self.featurizer}")
        shared = {key: self.parameters.get(key) for key in ("featurizer", "seed", "tiles_dir")}
        shared["ingestion.sample_frac"] = self.parameters.get("ingestion", {}).get("sample_frac")
        self.client.log_batch(run.info.run_id, params=_params({**shared, **flatten(classifier, "classifier.")}))
        return run.info.run_id

    def log_tile_index(self, tile_index: Any) -> None:
        counts = {row["split"]: row["count"] for row in tile_index.groupBy("split").count().collect()}
        params = {f"tiles.{split}": count for split, count in sorted(counts.items())}
        params["tiles.indexed"] = sum(counts.values())
        self.client.log_batch(self.parent, params=_params(params))

    def log_tile_count(self, dataset_name: str, count: int, seconds: float) -> None:
        """``tiles.featurized`` / ``tiles.rejected``; once both are known, featurization throughput
        (tiles seen / wall time of the node that saved ``tile_features``)."""
        key = "tiles.featurized" if dataset_name == TILE_FEATURES else "tiles.rejected"
        self.client.log_batch(self.parent, params=_params({key: count}))
        with self._lock:
            self._tile_counts[key] = count
            if dataset_name == TILE_FEATURES:
                self._featurize_seconds = seconds
            if len(self._tile_counts) < 2 or self._featurize_seconds is None:
                return
            seen, featurize_seconds = sum(self._tile_counts.values()), self._featurize_seconds
        metrics = {"featurize.seconds": featurize_seconds,
                   "featurize.tiles_per_s": seen / max(featurize_seconds, 1e-9)}
        self.client.log_batch(self.parent, metrics=_metrics(metrics))

    def log_metrics(self, model: str, metrics: Mapping[str, Any]) -> None:
        """A classifier's numbers on its child run, its headline numbers on the parent run."""
        run_id = self.child(model)
        self.client.log_batch(run_id, metrics=_metrics(evaluation_metrics(metrics)))
        self.client.log_dict(run_id, dict(metrics), "metrics.json")
        headline = {f"{model}.{key}": float(metrics[key]) for key in ("accuracy", "macro_f1")}
        self.client.log_batch(self.parent, metrics=_metrics(headline))

    def log_model(self, model: str, dataset_name: str, pipeline_model: Any, seconds: float) -> None:
        """Training time, the catalog path of the model (tag) and the model itself (spark flavour)."""
        run_id = self.child(model)
        self.client.log_batch(run_id, metrics=_metrics({"train.seconds": seconds}))
        dataset = self.catalog.get(dataset_name)
        # Kedro datasets expose their (absolute, for local paths) location only via _describe().
        filepath = dataset._describe().get("filepath") if dataset is not None else None
        self.client.set_tag(run_id, "model_path", redact_url(str(filepath)))
        log_spark_model(self.client, run_id, pipeline_model)

    def log_summary(self, summary: Mapping[str, Any]) -> None:
        self.client.log_dict(self.parent, dict(summary), "metrics_summary.json")

    def finish(self, status: int) -> None:
        wall = time.perf_counter() - self._pipeline_started
        self.client.log_batch(self.parent, metrics=_metrics({"wall_time_s": wall}))
        for run_id in self.children.values():
            self.client.set_terminated(run_id, RunStatus.to_string(status))
