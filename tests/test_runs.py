"""The runs table (`python -m aerial_kedro.runs`) on a tracking store written through MLflow's client.

No pipeline runs here: parent and child runs are created as RunTrackingHooks create them (tags
``mlflow.parentRunId``, ``featurizer``, ``classifier``; metrics ``accuracy``, ``macro_f1``).
"""

from __future__ import annotations

import os
import time

import mlflow
from click.testing import CliRunner
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from aerial_kedro.runs import child_runs, main, run_rows

HEADER = ["run", "featurizer", "classifier", "accuracy", "macro-F1", "date"]


def write_history(uri: str) -> dict[str, str]:
    """Two train runs (the second newer) with two classifiers each, one without metrics; run ids."""
    client = MlflowClient(uri)
    experiment = client.create_experiment("aerial_kedro")
    ids = {}
    for number, featurizer in enumerate(("squeezenet1_1", "efficientnet_lite0")):
        parent = client.create_run(experiment, run_name=f"train {featurizer}").info.run_id
        ids[featurizer] = parent
        for classifier, accuracy in (("logistic_regression", 0.8 + number / 10), ("random_forest", None)):
            tags = {"mlflow.parentRunId": parent, "featurizer": featurizer, "classifier": classifier}
            child = client.create_run(experiment, tags=tags, start_time=int(time.time() * 1000) + number * 1000)
            if accuracy is not None:
                now = int(time.time() * 1000)
                client.log_batch(child.info.run_id, metrics=[Metric("accuracy", accuracy, now, 0),
                                                             Metric("macro_f1", accuracy - 0.05, now, 0)])
            client.set_terminated(child.info.run_id)
        client.set_terminated(parent)
    return ids


def test_runs_table_lists_child_runs_newest_first(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path.as_posix()}/mlflow.db"
    ids = write_history(uri)
    other_store = f"sqlite:///{tmp_path.as_posix()}/other.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", other_store)  # e.g. conf/hdinsight's variable
    before = mlflow.get_tracking_uri()

    result = CliRunner().invoke(main, ["--tracking-uri", uri, "--experiment", "aerial_kedro"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0] == f"Experiment 'aerial_kedro' at {uri}"
    assert lines[1].split() == HEADER
    rows = [line.split() for line in lines[2:]]
    assert [row[1] for row in rows] == ["efficientnet_lite0"] * 2 + ["squeezenet1_1"] * 2  # newest first
    assert [row[0] for row in rows] == [ids["efficientnet_lite0"][:8]] * 2 + [ids["squeezenet1_1"][:8]] * 2
    by_classifier = {(row[1], row[2]): row[3:5] for row in rows}
    assert by_classifier[("efficientnet_lite0", "logistic_regression")] == ["0.9000", "0.8500"]
    assert by_classifier[("squeezenet1_1", "random_forest")] == ["-", "-"]  # no metrics logged: NaN
    # The search left the process's tracking URI alone, the environment variable included.
    assert mlflow.get_tracking_uri() == before and os.environ["MLFLOW_TRACKING_URI"] == other_store

    assert len(child_runs(uri, "aerial_kedro")) == 4
    assert len(run_rows(MlflowClient(uri), "aerial_kedro")) == 4  # the notebook passes a client


def test_runs_table_without_the_experiment(tmp_path):
    uri = f"sqlite:///{tmp_path.as_posix()}/mlflow.db"
    assert run_rows(uri, "aerial_kedro") == [] and child_runs(uri, "aerial_kedro").empty
    result = CliRunner().invoke(main, ["--tracking-uri", uri, "--experiment", "aerial_kedro"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (f"No train runs in experiment 'aerial_kedro' at {uri}: "
                                     "run `kedro run --pipelines=train`.")
