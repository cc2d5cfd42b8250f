"""What a person reads at the end of a real `kedro run` (subprocesses, on the model `train` wrote):
a summary naming the real paths of the products and the headline figures, the MLflow run id,
a heartbeat while classifiers fit, and none of the lines nobody reads."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PASSENGER_MODELS, SHARED_DATA, make_project_copy
from mlflow.tracking import MlflowClient
from run_output import third_party_noise

pytestmark = pytest.mark.slow

KEDRO = Path(sys.executable).with_name("kedro")
# A quarter of the Czech scene (west, south: ~100 chips) and the reference squares over its west.
SCENE_PART = SHARED_DATA / "rasters" / "czech-2x2" / "czech_s2_tci_20220319.2.tif"
LABELS = SHARED_DATA / "labels" / "czech_west_labels.geojson"
SUMMARY = "aerial_kedro.run_summary: "
NOT_READ = ("Loading data from params:", "Loading data from parameters", "tracking URI is converted",
            "'tracking_uri' key in mlflow.yml is relative")  # fmt: skip


@pytest.fixture(scope="module")
def project(trained_project, tmp_path_factory) -> Path:
    """A project holding what `train` wrote (featurizer, models, features) and nothing else."""
    project = make_project_copy(tmp_path_factory.mktemp("run_log") / "project")
    for folder in ("data/04_feature", "data/06_models"):
        shutil.copytree(trained_project / folder, project / folder)
    return project


def kedro_run(project: Path, *args: str, **env: str) -> str:
    """stdout and stderr of a `kedro run` in ``project``, as the Makefile runs it."""
    variables = {key: value for key, value in os.environ.items() if key != "PYTHONWARNINGS"}
    variables.update(KEDRO_DISABLE_TELEMETRY="true", SPARK_LOCAL_IP="127.0.0.1",
                     PYSPARK_PYTHON=sys.executable, **env)  # fmt: skip
    result = subprocess.run(
        [str(KEDRO), "run", *args],
        cwd=project,
        env=variables,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    # The summary is the last thing the run logs (the console handler writes to stdout).
    assert SUMMARY in result.stdout.rstrip().splitlines()[-1], result.stdout[-2000:]
    return output


def summary(output: str) -> list[str]:
    """The summary block: the run's last log lines, from 'Run summary:' on."""
    lines = [line.split(SUMMARY, 1)[1] for line in output.splitlines() if SUMMARY in line]
    start = max(i for i, line in enumerate(lines) if line.startswith("Run summary:"))
    return lines[start:]


def labelled_path(block: list[str], label: str) -> Path:
    match = [line for line in block if re.match(rf"  {re.escape(label)} +/", line)]
    assert match, f"no '{label}' line in {block}"
    return Path(match[0].split(maxsplit=len(label.split()))[-1])


def listed_paths(block: list[str]) -> list[Path]:
    """Every path the block names, expanded (``dir/: a, b`` -> dir/a, dir/b; ``d/{x,y}/f`` -> d/x/f, d/y/f)."""
    paths = []
    for line in block:
        found = re.search(r"(/\S*)(.*)$", line)
        if not found or line.lstrip().startswith("MLflow"):
            continue
        head, rest = found.group(1), found.group(2)
        for folder in braces(head.removesuffix(":")):
            if head.endswith("/:"):
                paths += [Path(folder) / name.strip() for name in rest.split(",")]
            else:
                paths.append(Path(folder))
    return paths


def braces(path: str) -> list[str]:
    found = re.search(r"\{([^}]*)\}", path)
    if not found:
        return [path]
    return [
        expanded
        for option in found.group(1).split(",")
        for expanded in braces(path[: found.start()] + option + path[found.end() :])
    ]


def assert_readable(output: str) -> None:
    """Nothing from third parties (no Python warning, Spark banner or JVM chatter), none of the
    lines nobody reads, and our own progress (and Kedro's) still shows."""
    assert third_party_noise(output) == []
    for text in NOT_READ:
        assert text not in output, [line for line in output.splitlines() if text in line]
    assert re.search(r"INFO +aerial_kedro\.hooks: Spark \d", output)
    assert re.search(r"INFO +aerial_kedro\.pipelines\.\w+\.nodes: ", output)
    assert "Pipeline execution completed successfully" in output


def test_fits_beat_and_the_train_side_summary_gives_accuracy_paths_and_mlflow_run(project):
    lighter = ",".join(f"{key}={value}" for key, value in PASSENGER_MODELS.items())
    output = kedro_run(project, "--pipelines=modeling,evaluation", f"--params={lighter}",
                       AERIAL_KEDRO_HEARTBEAT_S="0.5")  # fmt: skip
    assert_readable(output)
    beats = re.findall(r"aerial_kedro\.progress: still fitting (\w+): \d+s", output)
    assert {"logistic_regression", "random_forest"} & set(beats), output[-4000:]

    block = summary(output)
    print("\n".join(block))
    assert len(block) <= 15
    assert re.match(r"Run summary: (modeling\+evaluation|evaluation\+modeling) finished in \d", block[0])
    metrics = json.loads(labelled_path(block, "metrics").read_text())
    accuracy = next(line for line in block if line.startswith("  accuracy"))
    for model in ("logistic_regression", "random_forest"):
        assert f"{model} {metrics[model]['accuracy']:.3f}" in accuracy
    paths = listed_paths(block)
    assert project / "data/08_reporting/logistic_regression/confusion_matrix.png" in paths
    assert project / "data/08_reporting/random_forest/metrics.json" in paths
    # The model itself (its saved version's folder when the catalog entry is versioned).
    models = project / "data/06_models/efficientnet_lite0/random_forest"
    assert any(path == models or models in path.parents for path in paths), paths
    assert all(path.exists() for path in paths), [p for p in paths if not p.exists()]

    run_id = re.search(r"MLflow run ([0-9a-f]{32}) \(experiment aerial_kedro, sqlite:///", block[-1]).group(1)
    run = MlflowClient(f"sqlite:///{project.as_posix()}/mlflow.db").get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics["logistic_regression.accuracy"] == pytest.approx(metrics["logistic_regression"]["accuracy"])


def test_assess_summary_names_the_map_the_cog_and_gives_shares_and_accuracy_with_ci(project):
    output = kedro_run(
        project,
        "--pipelines=assess",
        f"--params=score_source={SCENE_PART},reference_labels={LABELS},class_scheme=coarse",
    )
    assert_readable(output)
    assert "Pipeline execution completed successfully" in output
    block = summary(output)
    print("\n".join(block))
    assert len(block) <= 15

    reports = project / "data/08_reporting"
    assert labelled_path(block, "map") == reports / "maps" / SCENE_PART.stem / "land_use_map.png"
    assert labelled_path(block, "class COG") == reports / "maps" / SCENE_PART.stem / "land_use_classes.tif"
    assert labelled_path(block, "accuracy") == reports / "assessment/accuracy.json"
    paths = listed_paths(block)
    assert reports / "maps" / SCENE_PART.stem / "class_shares.json" in paths
    assert reports / "assessment/accuracy.png" in paths
    assert all(path.exists() for path in paths), [p for p in paths if not p.exists()]

    shares = json.loads((reports / "maps" / SCENE_PART.stem / "class_shares.json").read_text())
    chips = next(line for line in block if line.startswith("  chips:"))
    assert chips.startswith(f"  chips: {shares['chips']['scored']} scored of {shares['chips']['planned']} planned")
    top = max(shares["shares"], key=shares["shares"].get)
    assert f"shares: {top} {100 * shares['shares'][top]:.0f} %" in chips

    report = json.loads((reports / "assessment/accuracy.json").read_text())
    assert report["n_reference"] > 0
    oa = report["overall_accuracy"]
    # Without a CI when a mapped class holds fewer than two reference chips (Olofsson's variance).
    ci = (
        f" +- {oa['ci95']:.2f} (95 % CI)"
        if oa["ci95"] is not None
        else " (no CI: a mapped class has fewer than 2 reference chips)"
    )
    assert (
        f"  assess: overall accuracy {oa['estimate']:.2f}{ci}, {report['n_reference']} reference chips"
    ) in "\n".join(block)
    assert re.match(r"  MLflow run [0-9a-f]{32} ", block[-1])
