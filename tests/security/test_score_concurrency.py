"""Issue 13 item 7: two `score` runs of the same input at once.

They share a run id and so its Parquet partitions; without a lock, Spark's dynamic partition
overwrite of one run deleted the other's files mid-write (``SparkFileNotFoundException``). Now
each chunk group is written under a per-run OS file lock, and chunks the other run completed
meanwhile are not written again: both runs succeed and every chip is predicted exactly once.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import RASTERS, crop_raster

pytestmark = pytest.mark.slow

QUARTER = RASTERS / "czech-2x2" / "czech_s2_tci_20220319.0.tif"
PREDICTIONS = "data/07_model_output/scoring/predictions"
# 8 x 4 whole 64-px chips, written in 8 chunks of 4: the two runs interleave over many chunk groups.
WIDTH, HEIGHT, CHIPS, CHUNK = 512, 256, 32, 4


def start_score(project: Path, source: Path) -> subprocess.Popen:
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    params = f"score_source={source},scoring.chunk_size={CHUNK},scoring.chunks_per_job=1"
    return subprocess.Popen(
        [sys.executable, "-m", "kedro", "run", "--pipelines=score", f"--params={params}"],
        cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def test_two_concurrent_runs_of_the_same_input_both_finish_with_each_chip_once(
    trained_project, spark, tmp_path
):
    source = crop_raster(QUARTER, tmp_path / "czech_part.tif", WIDTH, HEIGHT)
    runs = [start_score(trained_project, source) for _ in range(2)]
    outputs = [run.communicate(timeout=900)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-3000:]
    frame = spark.read.parquet(str(trained_project / PREDICTIONS))
    run_ids = {
        line.split("run ")[-1].strip()
        for line in outputs[0].splitlines()
        if "Planned" in line and "run " in line
    }
    assert len(run_ids) == 1
    rows = frame.where(frame.run_id == run_ids.pop()).select("chip_id", "chunk").toPandas()
    assert len(rows) == CHIPS and rows["chip_id"].is_unique
    assert rows["chunk"].nunique() == rows["chunk"].max() + 1 == CHIPS // CHUNK  # every chunk written
    assert (trained_project / PREDICTIONS / "_run_locks").is_dir()
