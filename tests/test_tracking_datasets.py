"""Run history keyed on datasets: renamed nodes keep their logging; logged models load back.

A small pipeline saves the datasets the run history reads (``tile_index``, ``tile_features``,
``rejected_tiles``, ``<model>.classifier_model``, ``<model>.metrics``, ...), run by Kedro's
``SequentialRunner`` with ``RunTrackingHooks`` into an MLflow SQLite store under tmp_path: once
with the project's node names and namespace, once with other names and no namespace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import pytest
from kedro.framework.hooks.manager import _create_hook_manager
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline, node
from kedro.runner import SequentialRunner
from kedro_datasets.matplotlib import MatplotlibDataset
from mlflow.tracking import MlflowClient
from mlflow.tracking._tracking_service.utils import _use_tracking_uri

from aerial_kedro.datasets import SparkMLModelDataset
from aerial_kedro.pipelines.evaluation.plots import plot_confusion_matrix
from aerial_kedro.tracking.hooks import RunTrackingHooks

pytestmark = pytest.mark.slow  # kedro subprocesses, Spark jobs or servers

MODEL = "toy"
CLASSES = ("Forest", "SeaLake")
PARAMETERS = {
    "featurizer": "efficientnet_lite0",
    "seed": 42,
    "tiles_dir": "tiles",
    "ingestion": {"sample_frac": 1.0},
    MODEL: {"classifier": {"type": "logistic_regression", "hyperparameters": {"maxIter": 20}}},
}


def _spark():
    from pyspark.sql import SparkSession

    return SparkSession.getActiveSession()


def index_tiles():
    return _spark().createDataFrame(
        [(f"t{i}.jpg", "test" if i % 4 == 0 else "train") for i in range(8)], ["path", "split"]
    )


def featurize(tile_index):
    rows = [(float(i), float(i % 2), CLASSES[i % 2]) for i in range(8)]
    features = _spark().createDataFrame(rows, ["x", "y", "label"])
    rejected = _spark().createDataFrame([("bad.jpg", "truncated JPEG")], ["path", "error"])
    return features, rejected


def fit(features):
    from pyspark.ml import Pipeline as SparkPipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import StringIndexer, VectorAssembler

    stages = [
        StringIndexer(inputCol="label", outputCol="label_index", stringOrderType="alphabetAsc"),
        VectorAssembler(inputCols=["x", "y"], outputCol="features"),
        LogisticRegression(labelCol="label_index", maxIter=20),
    ]
    return SparkPipeline(stages=stages).fit(features)


def evaluate(model, features) -> tuple[dict, dict, Any]:
    predicted = model.transform(features).select("label_index", "prediction").collect()
    correct = sum(row["label_index"] == row["prediction"] for row in predicted)
    accuracy = correct / len(predicted)
    scores = {"precision": accuracy, "recall": accuracy, "f1": accuracy, "support": 4}
    metrics = {"accuracy": accuracy, "macro_f1": accuracy, "n_test": len(predicted),
               "per_class": {name: scores for name in CLASSES}}
    matrix = [[4, 0], [0, 4]]
    return metrics, {"classes": list(CLASSES), "matrix": matrix}, plot_confusion_matrix(matrix, CLASSES, MODEL)


def summarize(metrics):
    return {MODEL: metrics}


def project_names_pipeline() -> Pipeline:
    """The outputs under the project's node names (``ingestion.build_tile_index``, ...)."""
    model_nodes = Pipeline(
        [
            node(fit, "features", "classifier_model", name="train_classifier"),
            node(evaluate, ["classifier_model", "features"],
                 ["metrics", "confusion_matrix", "confusion_matrix_plot"], name="evaluate_predictions"),
        ]
    )
    return Pipeline(
        [
            node(index_tiles, None, "tile_index", name="build_tile_index", namespace="ingestion"),
            node(featurize, "tile_index", ["tile_features", "rejected_tiles"], name="featurize_tiles",
                 namespace="featurization"),
            node(lambda features: features, "tile_features", "features", name="select_features"),
            Pipeline(model_nodes, namespace=MODEL, inputs={"features"}),
            node(summarize, f"{MODEL}.metrics", "metrics_summary", name="summarize_metrics",
                 namespace="evaluation"),
        ]
    )


def renamed_pipeline() -> Pipeline:
    """The same outputs saved by nodes of other names, none of them namespaced."""
    return Pipeline(
        [
            node(index_tiles, None, "tile_index", name="list_the_tiles"),
            node(featurize, "tile_index", ["tile_features", "rejected_tiles"], name="embed"),
            node(lambda features: features, "tile_features", "features", name="pick"),
            node(fit, "features", f"{MODEL}.classifier_model", name="fit_the_toy"),
            node(evaluate, [f"{MODEL}.classifier_model", "features"],
                 [f"{MODEL}.metrics", f"{MODEL}.confusion_matrix", f"{MODEL}.confusion_matrix_plot"],
                 name="score_the_toy"),
            node(summarize, f"{MODEL}.metrics", "metrics_summary", name="wrap_up"),
        ]
    )


@pytest.fixture
def tracking_uri(tmp_path):
    uri = f"sqlite:///{tmp_path.as_posix()}/mlflow.db"
    with _use_tracking_uri(uri):
        yield uri


def run_tracked(pipeline: Pipeline, folder: Path, run_name: str) -> str:
    """Run ``pipeline`` as `kedro run` would with tracking on; the parent run's id."""
    catalog = DataCatalog({
        "parameters": MemoryDataset(PARAMETERS),
        f"{MODEL}.classifier_model": SparkMLModelDataset(filepath=str(folder / "models" / MODEL)),
        f"{MODEL}.confusion_matrix_plot": MatplotlibDataset(filepath=str(folder / "confusion_matrix.png")),
    })
    hooks = RunTrackingHooks()
    hook_manager = _create_hook_manager()
    hook_manager.register(hooks)
    client = MlflowClient()
    experiment = client.get_experiment_by_name("aerial_kedro")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment("aerial_kedro")
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as parent:
        hooks.before_pipeline_run({"pipeline_names": [run_name]}, pipeline, catalog)
        SequentialRunner().run(pipeline, catalog, hook_manager)
        hooks.after_pipeline_run()
    return parent.info.run_id


def logged(client: MlflowClient, parent_id: str) -> dict[str, Any]:
    """What the run history holds for one pipeline run (timings reduced to their names)."""
    parent = client.get_run(parent_id)
    [child] = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")
    return {
        "parent.params": {k: v for k, v in parent.data.params.items() if k.startswith("tiles.")},
        "parent.metrics": sorted(parent.data.metrics),
        "parent.artifacts": sorted(a.path for a in client.list_artifacts(parent_id)),
        "child.tags": {k: child.data.tags[k] for k in ("featurizer", "classifier", "model_namespace")},
        "child.metrics": sorted(child.data.metrics),
        "child.artifacts": sorted(a.path for a in client.list_artifacts(child.info.run_id)),
        "child.model": sorted(a.path for a in client.list_artifacts(child.info.run_id, "model")),
        "child.status": child.info.status,
        "child.id": child.info.run_id,
    }


# renamed_pipeline saves `toy.metrics` etc. from un-namespaced nodes on purpose.
@pytest.mark.filterwarnings("ignore:One or more dataset names contain '.':UserWarning")
def test_renaming_nodes_keeps_the_run_history_and_the_model_loads_back(tmp_path, tracking_uri, spark):
    import mlflow.artifacts
    import mlflow.spark

    client = MlflowClient(tracking_uri)
    original = logged(client, run_tracked(project_names_pipeline(), tmp_path / "a", "train"))
    renamed = logged(client, run_tracked(renamed_pipeline(), tmp_path / "b", "train"))

    assert original["parent.params"] == {
        "tiles.indexed": "8", "tiles.test": "2", "tiles.train": "6",
        "tiles.featurized": "8", "tiles.rejected": "1",
    }
    assert {"featurize.seconds", "featurize.tiles_per_s", "wall_time_s",
            f"{MODEL}.accuracy", f"{MODEL}.macro_f1"} <= set(original["parent.metrics"])
    assert original["parent.artifacts"] == ["metrics_summary.json"]
    assert original["child.tags"] == {"featurizer": "efficientnet_lite0", "classifier": "logistic_regression",
                                      "model_namespace": MODEL}
    assert {"accuracy", "macro_f1", "n_test", "f1.Forest", "train.seconds"} <= set(original["child.metrics"])
    assert original["child.artifacts"] == ["confusion_matrix.json", "confusion_matrix.png", "metrics.json", "model"]
    assert {"model/MLmodel", "model/sparkml", "model/requirements.txt"} <= set(original["child.model"])
    assert original["child.status"] == "FINISHED"
    for key in original:
        if key != "child.id":
            assert renamed[key] == original[key], key

    # The logged model is an MLflow Model of the spark flavour: it predicts as the catalog's copy.
    rows = spark.createDataFrame([(0.0, 0.0, "Forest"), (7.0, 1.0, "SeaLake"), (3.0, 1.0, "SeaLake")],
                                 ["x", "y", "label"])
    loaded = mlflow.spark.load_model(f"runs:/{renamed['child.id']}/model")
    saved = SparkMLModelDataset(filepath=str(tmp_path / "b" / "models" / MODEL)).load()
    predictions = [row["prediction"] for row in loaded.transform(rows).collect()]
    assert predictions == [row["prediction"] for row in saved.transform(rows).collect()]
    assert predictions == [0.0, 1.0, 1.0]
    requirements = Path(mlflow.artifacts.download_artifacts(
        run_id=renamed["child.id"], artifact_path="model/requirements.txt", dst_path=str(tmp_path),
        tracking_uri=tracking_uri))
    assert f"pyspark=={__import__('pyspark').__version__}" in requirements.read_text().split()
