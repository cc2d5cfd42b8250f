"""Run history: what a `train` run leaves in MLflow, the runs table, and runs with tracking off."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import PROJECT_ROOT, SAMPLE_TILES, make_project_copy, run_kedro
from mlflow.tracking import MlflowClient

from aerial_kedro.runs import format_table, main, run_rows
from aerial_kedro.tracking.resolvers import register_project_path_resolver, required_env
from aerial_kedro.tracking.run_log import evaluation_metrics, flatten

MODELS = ("logistic_regression", "random_forest")


def test_flatten_and_evaluation_metrics():
    assert flatten({"a": {"b": 1, "c": {"d": "x"}}, "e": [1, 2]}) == {"a.b": 1, "a.c.d": "x", "e": [1, 2]}
    metrics = {"accuracy": 0.5, "macro_f1": 0.4, "n_test": 4,
               "per_class": {"Sea Lake": {"precision": 1.0, "recall": 0.5, "f1": 0.6, "support": 2}}}
    assert evaluation_metrics(metrics) == {
        "accuracy": 0.5, "macro_f1": 0.4, "n_test": 4.0,
        "precision.Sea Lake": 1.0, "recall.Sea Lake": 0.5, "f1.Sea Lake": 0.6,
    }


def test_required_env_names_the_missing_variable(monkeypatch):
    monkeypatch.delenv("AERIAL_TEST_URI", raising=False)
    with pytest.raises(ValueError, match="Environment variable AERIAL_TEST_URI is not set"):
        required_env("AERIAL_TEST_URI")
    monkeypatch.setenv("AERIAL_TEST_URI", "http://127.0.0.1:5000")
    assert required_env("AERIAL_TEST_URI") == "http://127.0.0.1:5000"


def mlflow_conf_only(destination: Path) -> Path:
    """The project's conf/<env>/mlflow.yml files alone (other envs' files need their own variables)."""
    for env in ("base", "local", "hdinsight"):
        (destination / env).mkdir(parents=True)
        source = PROJECT_ROOT / "conf" / env / "mlflow.yml"
        if source.is_file():
            shutil.copy(source, destination / env / "mlflow.yml")
    return destination


def test_hdinsight_tracking_uri_comes_from_the_environment(monkeypatch, tmp_path):
    from kedro.config import OmegaConfigLoader

    from aerial_kedro.settings import CONFIG_LOADER_ARGS

    conf = str(mlflow_conf_only(tmp_path / "conf"))
    register_project_path_resolver(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "azureml://example/mlflow")
    config = OmegaConfigLoader(conf, env="hdinsight", **CONFIG_LOADER_ARGS)["mlflow"]
    assert config["server"]["mlflow_tracking_uri"] == "azureml://example/mlflow"
    assert config["tracking"]["params"]["dict_params"]["flatten"] is True  # base keys kept (soft merge)
    assert config["tracking"]["experiment"]["create_experiment_kwargs"]["artifact_location"] is None

    local = OmegaConfigLoader(conf, env="local", **CONFIG_LOADER_ARGS)["mlflow"]
    assert local["server"]["mlflow_tracking_uri"] == f"sqlite:///{tmp_path.resolve().as_posix()}/mlflow.db"

    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    with pytest.raises(Exception, match="MLFLOW_TRACKING_URI is not set"):
        OmegaConfigLoader(conf, env="hdinsight", **CONFIG_LOADER_ARGS)["mlflow"]


def _client(project: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{project.as_posix()}/mlflow.db")


def _runs(project: Path) -> list:
    client = _client(project)
    experiment = client.get_experiment_by_name("aerial_kedro")
    return client.search_runs([experiment.experiment_id]) if experiment else []


@pytest.mark.slow
def test_train_run_is_one_parent_run_with_a_child_per_classifier(trained_project):
    client = _client(trained_project)
    runs = _runs(trained_project)
    # Other tests may score in the same project; each `score` is a run of its own.
    parents = [
        run for run in runs
        if "mlflow.parentRunId" not in run.data.tags and run.info.run_name.startswith("train")
    ]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0]
    assert parent.info.run_name == "train efficientnet_lite0"
    params = parent.data.params
    assert params["featurizer"] == "efficientnet_lite0" and params["seed"] == "42"
    assert params["ingestion.sample_frac"] == "1.0" and params["tiles_dir"].endswith("tiles")
    assert params["random_forest.classifier.hyperparameters.numTrees"] == "30"  # a runtime override
    assert (params["tiles.indexed"], params["tiles.test"], params["tiles.rejected"]) == ("304", "60", "3")
    assert params["tiles.featurized"] == "301"
    assert parent.data.metrics["featurize.tiles_per_s"] > 1 and parent.data.metrics["wall_time_s"] > 1
    assert {a.path for a in client.list_artifacts(parent.info.run_id)} == {"metrics_summary.json"}

    children = {
        run.data.tags["model_namespace"]: run
        for run in runs
        if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    }
    assert set(children) == set(MODELS)
    for model, child in children.items():
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.info.status == "FINISHED"
        assert child.data.tags["featurizer"] == "efficientnet_lite0" and child.data.tags["classifier"] == model
        assert child.data.params["classifier.type"] == model
        metrics = child.data.metrics
        assert 0.6 < metrics["accuracy"] <= 1 and metrics["n_test"] == 60
        assert len([key for key in metrics if key.startswith("f1.")]) == 10
        assert metrics["accuracy"] == parent.data.metrics[f"{model}.accuracy"]
        artifacts = {a.path for a in client.list_artifacts(child.info.run_id)}
        assert {"confusion_matrix.png", "confusion_matrix.json", "metrics.json", "model"} <= artifacts
        # An MLflow Model of the spark flavour (mlflow.spark.load_model reads it: test_tracking_datasets.py).
        assert {a.path for a in client.list_artifacts(child.info.run_id, "model")} >= {"model/MLmodel", "model/sparkml"}


@pytest.mark.slow
def test_runs_cli_prints_one_row_per_classifier(trained_project):
    result = CliRunner().invoke(main, ["--project", str(trained_project)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()  # warnings go to stderr
    assert lines[1].split() == ["run", "featurizer", "classifier", "accuracy", "macro-F1", "date"]
    rows = [line.split() for line in lines[2:]]
    assert sorted(row[2] for row in rows) == list(MODELS)
    assert all(row[1] == "efficientnet_lite0" and 0.6 < float(row[3]) <= 1 for row in rows)
    assert len(run_rows(_client(trained_project), "aerial_kedro")) == 2
    assert format_table([]).split() == ["run", "featurizer", "classifier", "accuracy", "macro-F1", "date"]


def _tracking_off_copy(root: Path) -> Path:
    project = make_project_copy(root)
    (project / "conf" / "local" / "mlflow.yml").write_text(
        "tracking:\n  disable_tracking:\n    pipelines: [ingestion]\n"
    )
    return project


@pytest.mark.slow
def test_kedro_run_works_with_tracking_switched_off(tmp_path, spark):
    import mlflow

    project = _tracking_off_copy(tmp_path / "project")
    run_kedro(project, "ingestion", tiles_dir=str(SAMPLE_TILES))
    assert (project / "data/02_intermediate/tile_index/_SUCCESS").is_file()
    assert _runs(project) == []
    assert mlflow.active_run() is None


def test_a_bad_parameter_leaves_no_mlflow_run_behind(tmp_path):
    import mlflow

    from aerial_kedro.errors import ParameterError

    project = make_project_copy(tmp_path / "project")
    with pytest.raises(ParameterError, match="tiles_dir"):
        run_kedro(project, "ingestion", tiles_dir=str(tmp_path / "no-such-folder"))
    assert mlflow.active_run() is None
    with sqlite3.connect(project / "mlflow.db") as db:
        assert db.execute("select count(*) from runs").fetchone()[0] == 0
