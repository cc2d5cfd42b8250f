"""Two `train` runs of one project at once: the second waits for the first's lock (they used to
collide in tile_index/_temporary), and one that waits too long fails in one line, writing nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from conftest import make_project_copy

from aerial_kedro.train_lock import lock_folder

pytestmark = pytest.mark.slow  # kedro subprocesses, Spark jobs or servers


def test_the_lock_folder_is_the_folder_of_tile_index():
    assert lock_folder("data/02_intermediate/tile_index") == "data/02_intermediate"
    assert lock_folder("file:///p/data/02_intermediate/tile_index/") == "/p/data/02_intermediate"
    assert lock_folder("wasb://data@account.blob.core.windows.net/02_intermediate/tile_index") is None


def test_a_second_train_gives_up_in_one_line_while_the_first_holds_the_lock(tmp_path, sample_tiles):
    project = make_project_copy(tmp_path / "project")
    folder = project / "data" / "02_intermediate"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import time
            from aerial_kedro.datasets.run_lock import run_lock
            with run_lock({str(folder)!r}, "train", 10):
                print("held", flush=True)
                time.sleep(120)
        """)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "SPARK_LOCAL_IP": "127.0.0.1",
               "PYSPARK_PYTHON": sys.executable, "AERIAL_KEDRO_TRAIN_LOCK_TIMEOUT_S": "2"}  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "kedro", "run", "--pipelines=ingestion",
             f"--params=tiles_dir={sample_tiles}"],
            cwd=project, env=env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "run train is being written by another process" in errors[0]
    assert str(folder / "_run_locks" / "train.lock") in errors[0]
    assert "Traceback" not in done.stderr
    assert not (folder / "tile_index").exists()
