"""`train` and `score` on a real multi-process Spark cluster: a standalone master and two workers on
127.0.0.1, each executor its own JVM with its own Python workers. Nothing may depend on the driver's
memory: the featurizer reaches the executors as a broadcast, the models through Spark's writer."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from cluster.standalone import StandaloneCluster, kedro_run
from conftest import RASTERS, SAMPLE_TILES, make_project_copy

pytestmark = pytest.mark.slow

# A quarter of the Sentinel-2 scene: 165 chips (edge chips at least half inside included).
SCORE_SOURCE = RASTERS / "czech-2x2" / "czech_s2_tci_20220319.0.tif"
# The models are passengers here: fewer trees and iterations keep the run short on two 1-core
# executors (every L-BFGS iteration is a Spark job, which costs more on a cluster than in local mode).
TRAIN_PARAMS = {
    "tiles_dir": str(SAMPLE_TILES),
    "random_forest.classifier.hyperparameters.numTrees": "15",
    "logistic_regression.classifier.hyperparameters.maxIter": "30",
}


def output(result: subprocess.CompletedProcess) -> str:
    return f"{result.stdout}\n{result.stderr}"


def assert_succeeded(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"kedro run failed ({result.returncode}):\n{output(result)[-6000:]}"


@pytest.fixture(scope="module")
def trained_on_cluster(tmp_path_factory, standalone_cluster: StandaloneCluster) -> tuple[Path, subprocess.CompletedProcess]:
    project = make_project_copy(tmp_path_factory.mktemp("cluster") / "project")
    return project, kedro_run(project, standalone_cluster, "train", **TRAIN_PARAMS)


def test_train_runs_on_the_cluster(trained_on_cluster, standalone_cluster):
    project, result = trained_on_cluster
    assert_succeeded(result)
    assert re.search(rf"Spark 3\.\d+\.\d+ on {re.escape(standalone_cluster.master_url)}\b", output(result))
    summary = json.loads((project / "data/08_reporting/metrics_summary.json").read_text())
    for model in ("logistic_regression", "random_forest"):
        assert summary[model]["n_test"] == 60
        assert summary[model]["accuracy"] > 0.5, summary[model]["accuracy"]
    features = pq.read_table(project / "data/04_feature/features")
    assert features.num_rows == 300
    assert len(features.column("features")[0]) == 1968


def test_both_workers_ran_executors_that_did_work(trained_on_cluster, standalone_cluster):
    assert_succeeded(trained_on_cluster[1])
    logs = standalone_cluster.executor_logs()
    assert sorted(logs) == ["worker1", "worker2"]
    for worker, stderr_files in logs.items():
        assert any("Finished task" in path.read_text(errors="replace") for path in stderr_files), worker


def test_score_runs_on_the_cluster(trained_on_cluster, standalone_cluster):
    project, train = trained_on_cluster
    assert_succeeded(train)
    result = kedro_run(project, standalone_cluster, "score", score_source=str(SCORE_SOURCE))
    assert_succeeded(result)
    shares = json.loads((project / "data/08_reporting/maps" / SCORE_SOURCE.stem / "class_shares.json").read_text())
    assert shares["complete"] and shares["model"] == "logistic_regression"
    assert shares["chips"]["planned"] == shares["chips"]["scored"] == 165
    assert (project / "data/08_reporting/maps" / SCORE_SOURCE.stem / "land_use_classes.tif").stat().st_size > 0
