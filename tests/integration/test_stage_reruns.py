"""The README's per-stage commands: each stage of `train` reruns alone from what the stage before
it left under data/ (featurization from the tile index, evaluation from the saved models)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import run_kedro

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(trained_project, tmp_path_factory) -> Path:
    """A copy of the trained project: rerunning stages here leaves the session's project as is."""
    copy = tmp_path_factory.mktemp("stages") / "project"
    shutil.copytree(trained_project, copy, ignore=shutil.ignore_patterns("*.log"))
    return copy


def test_featurization_then_evaluation_rerun_alone_from_data(project, trained_project, spark):
    features = project / "data/04_feature/features"
    featurized = spark.read.parquet(str(features)).count()
    metrics = project / "data/08_reporting/logistic_regression/metrics.json"
    metrics.unlink()

    run_kedro(project, "featurization", tiles_dir=str(trained_project.parent / "tiles"))
    assert spark.read.parquet(str(features)).count() == featurized

    run_kedro(project, "evaluation")
    report = json.loads(metrics.read_text())
    assert report["n_test"] == 60 and 0 < report["accuracy"] <= 1
