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
from conftest import RASTERS, SAMPLE_TILES, copy_sample_tiles, crop_raster, make_project_copy

pytestmark = pytest.mark.slow

# The top-left 10 x 6 whole chips of a quarter of the Sentinel-2 scene: 60 chips.
QUARTER = RASTERS / "czech-2x2" / "czech_s2_tci_20220319.0.tif"
SCORE_CHIPS = 60
# The first 20 tiles of each of the sample's 10 classes: 200 tiles, 40 held out.
TILES_PER_CLASS = 20
# The models are passengers here: fewer trees and iterations keep the run short on two 1-core
# executors (every L-BFGS iteration is a Spark job, which costs more on a cluster than in local mode).
TRAIN_PARAMS = {
    "random_forest.classifier.hyperparameters.numTrees": "15",
    "logistic_regression.classifier.hyperparameters.maxIter": "30",
}


def output(result: subprocess.CompletedProcess) -> str:
    return f"{result.stdout}\n{result.stderr}"


def assert_succeeded(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, f"kedro run failed ({result.returncode}):\n{output(result)[-6000:]}"


@pytest.fixture(scope="module")
def trained_on_cluster(tmp_path_factory, standalone_cluster: StandaloneCluster) -> tuple[Path, subprocess.CompletedProcess]:
    root = tmp_path_factory.mktemp("cluster")
    classes = sorted(path.name for path in SAMPLE_TILES.iterdir() if path.is_dir())
    copy_sample_tiles(SAMPLE_TILES, root / "tiles", dict.fromkeys(classes, TILES_PER_CLASS))
    project = make_project_copy(root / "project")
    return project, kedro_run(project, standalone_cluster, "train", tiles_dir=str(root / "tiles"), **TRAIN_PARAMS)


def test_train_runs_on_the_cluster(trained_on_cluster, standalone_cluster):
    project, result = trained_on_cluster
    assert_succeeded(result)
    assert re.search(rf"Spark 3\.\d+\.\d+ on {re.escape(standalone_cluster.master_url)}\b", output(result))
    summary = json.loads((project / "data/08_reporting/metrics_summary.json").read_text())
    for model in ("logistic_regression", "random_forest"):
        assert summary[model]["n_test"] == 10 * TILES_PER_CLASS // 5
        assert summary[model]["accuracy"] > 0.5, summary[model]["accuracy"]
    features = pq.read_table(project / "data/04_feature/features")
    assert features.num_rows == 10 * TILES_PER_CLASS
    assert len(features.column("features")[0]) == 1968


def test_both_workers_ran_executors_that_did_work(trained_on_cluster, standalone_cluster):
    assert_succeeded(trained_on_cluster[1])
    logs = standalone_cluster.executor_logs()
    assert sorted(logs) == ["worker1", "worker2"]
    for worker, stderr_files in logs.items():
        assert any("Finished task" in path.read_text(errors="replace") for path in stderr_files), worker


def test_score_runs_on_the_cluster(trained_on_cluster, standalone_cluster, tmp_path):
    project, train = trained_on_cluster
    assert_succeeded(train)
    source = crop_raster(QUARTER, tmp_path / "czech_part.tif", 640, 384)
    result = kedro_run(project, standalone_cluster, "score", score_source=str(source))
    assert_succeeded(result)
    shares = json.loads((project / "data/08_reporting/maps" / source.stem / "class_shares.json").read_text())
    assert shares["complete"] and shares["model"] == "logistic_regression"
    assert shares["chips"]["planned"] == shares["chips"]["scored"] == SCORE_CHIPS
    assert (project / "data/08_reporting/maps" / source.stem / "land_use_classes.tif").stat().st_size > 0
