"""`train` on a folder of one's own class names (not EuroSAT's), and the runs it must refuse."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SAMPLE_TILES, copy_tiles_as, make_project_copy, run_kedro, versioned_path

pytestmark = pytest.mark.slow

# Three classes another aerial dataset might name so, four real tiles each (3 train, 1 test).
OWN_CLASSES = {"golfcourse": ("Pasture", 4), "harbor": ("SeaLake", 4), "woodland": ("Forest", 4)}
SMALL_FOREST = {"random_forest.classifier.hyperparameters.numTrees": 10}


@pytest.fixture(scope="module")
def own_project(tmp_path_factory, spark) -> Path:
    root = tmp_path_factory.mktemp("own_classes")
    tiles = copy_tiles_as(SAMPLE_TILES, root / "tiles", OWN_CLASSES)
    project = make_project_copy(root / "project")
    run_kedro(project, "train", tiles_dir=str(tiles), **SMALL_FOREST)  # only tiles_dir changed
    return project


def test_a_folder_of_own_class_names_trains_with_only_tiles_dir_changed(own_project):
    from pyspark.ml import PipelineModel

    from aerial_kedro.models.contract import class_names

    models = own_project / "data/06_models/efficientnet_lite0"
    for model in ("logistic_regression", "random_forest"):
        saved = versioned_path(models / model)
        assert class_names(PipelineModel.load(str(saved))) == sorted(OWN_CLASSES)
        metrics = json.loads((own_project / f"data/08_reporting/{model}/metrics.json").read_text())
        assert sorted(metrics["per_class"]) == sorted(OWN_CLASSES)
    scheme = json.loads((models / "class_scheme.json").read_text())
    assert scheme["name"] == "folders" and scheme["classes"] == sorted(OWN_CLASSES)


def _digests(folders: list[Path]) -> dict[str, str]:
    return {
        str(path): hashlib.sha256(path.read_bytes()).hexdigest()
        for folder in folders
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_a_one_class_folder_is_refused_before_spark_and_nothing_is_overwritten(own_project, tmp_path):
    one_class = copy_tiles_as(SAMPLE_TILES, tmp_path / "tiles", {"woodland": ("Forest", 5)})
    kept = [own_project / "data/06_models", own_project / "data/08_reporting"]
    before = _digests(kept)
    assert any(path.endswith("metrics_summary.json") for path in before)

    result = subprocess.run(
        [sys.executable, "-m", "kedro", "run", "--pipelines=train", f"--params=tiles_dir={one_class}"],
        cwd=own_project, capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    output = result.stdout + result.stderr
    assert result.returncode == 2  # a user error: one line, no traceback (aerial_kedro.cli)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in output
    assert (
        f"tiles_dir: '{one_class}' holds 1 class folder(s) (woodland: 5 tile(s)); "
        "a model needs at least two classes, this makes 1 (woodland)"
    ) in output
    assert "Spark 3." not in output  # refused before the session started
    assert _digests(kept) == before
