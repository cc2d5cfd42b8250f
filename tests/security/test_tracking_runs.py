"""Item 12 (stale runs) and item 2 (run parameters): what a real `kedro run` leaves in MLflow.

Both tests run `kedro run` as a child process on a project copy (its own SparkSession, its own
mlflow.db): one is SIGKILLed mid-run, the other gets a SAS URL as a parameter.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SAMPLE_TILES, make_project_copy
from mlflow.tracking import MlflowClient

from aerial_kedro.tracking.stale_runs import CLOSED_TAG, OWNER_PID_TAG, owner_tags

pytestmark = pytest.mark.slow  # kedro subprocesses, Spark jobs or servers

SIGNATURE = "c2lnbmF0dXJlLW9mLWEtdGVzdA%3D%3D"  # not a real token: the value redaction must hide


def kedro_run(project: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    return subprocess.Popen([sys.executable, "-m", "kedro", "run", *args], cwd=project, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def running_runs(project: Path) -> list[str]:
    db = project / "mlflow.db"
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db, timeout=1) as connection:
            return [row[0] for row in connection.execute(
                "select runs.run_uuid from runs join tags on tags.run_uuid = runs.run_uuid "
                "where runs.status = 'RUNNING' and tags.key = ?", (OWNER_PID_TAG,))]
    except sqlite3.Error:  # tables not created yet
        return []


def client(project: Path) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{project.as_posix()}/mlflow.db")


def start_session(project: Path) -> None:
    """What every `kedro run` / notebook / `kedro viz` does first: create a session and its context."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="local") as session:
        session.load_context()


def test_a_sigkilled_run_is_closed_on_the_next_session_start(tmp_path):
    project = make_project_copy(tmp_path / "project")
    child = kedro_run(project, "--pipeline", "ingestion", "--params", f"tiles_dir={SAMPLE_TILES}")
    deadline = time.monotonic() + 180
    while not running_runs(project):
        assert child.poll() is None, child.stdout.read()[-3000:]
        assert time.monotonic() < deadline, "the run never showed as RUNNING"
        time.sleep(0.2)
    os.kill(child.pid, signal.SIGKILL)  # as the OOM killer or `kill -9` would
    child.wait(timeout=30)
    [killed] = running_runs(project)

    # A concurrent run of a live process (this one) must be left alone.
    tracking = client(project)
    experiment = tracking.get_experiment_by_name("aerial_kedro")
    live = tracking.create_run(experiment.experiment_id, tags=owner_tags()).info.run_id

    start_session(project)

    run = tracking.get_run(killed)
    assert run.info.status == "KILLED" and run.info.end_time is not None
    assert run.data.tags[CLOSED_TAG].startswith(f"owner process {child.pid} gone")
    assert tracking.get_run(live).info.status == "RUNNING"
    tracking.set_terminated(live)


def test_a_sas_url_parameter_is_not_kept_in_the_run(tmp_path):
    project = make_project_copy(tmp_path / "project")
    sas_url = f"https://127.0.0.1:9/tiles?sv=2022-11-02&sp=rl&sig={SIGNATURE}"
    child = kedro_run(project, "--pipeline", "ingestion", "--params", f"tiles_dir={sas_url}")
    output, _ = child.communicate(timeout=300)
    assert child.returncode != 0  # nothing listens on port 9: the run fails, after logging its params
    tracking = client(project)
    [run] = tracking.search_runs([tracking.get_experiment_by_name("aerial_kedro").experiment_id])
    assert run.data.tags["runtime_params"] == "{'tiles_dir': 'https://127.0.0.1:9/tiles'}"
    stored = repr(run.data.params) + repr(run.data.tags)
    assert SIGNATURE not in stored and "sig=" not in stored, stored
    assert SIGNATURE not in output




def test_node_parameters_are_logged_redacted(tmp_path):
    """kedro-mlflow logs every ``params:`` input of a node (e.g. ``score_source``) as it is."""
    import mlflow

    from aerial_kedro.tracking.hooks import SessionScopedMlflowHook

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path.as_posix()}/mlflow.db")
    hook = SessionScopedMlflowHook()
    hook.long_params_strategy = "tag"
    try:
        experiment_id = MlflowClient().create_experiment("redaction")  # not a session's active one
        with mlflow.start_run(experiment_id=experiment_id) as run:
            hook._log_param("score_source", f"https://acct.blob.core.windows.net/c/s.tif?sv=1&sig={SIGNATURE}")
            hook._log_param("scoring", {"band_files": {"red": f"/vsicurl/https://h/r.tif?sig={SIGNATURE}"}})
            hook._log_param("tiles_dir", "../shared/data/eurosat-sample")
        params = MlflowClient().get_run(run.info.run_id).data.params
    finally:
        mlflow.set_tracking_uri("")
    assert params["score_source"] == "https://acct.blob.core.windows.net/c/s.tif"
    assert params["scoring"] == "{'band_files': {'red': '/vsicurl/https://h/r.tif'}}"
    assert params["tiles_dir"] == "../shared/data/eurosat-sample"
