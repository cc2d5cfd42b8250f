"""Item 6: a killed Python worker costs a task retry, not the run (real Spark, real kill by PID).

The SparkSession is built the project's way (``start_spark`` on the ``local`` env's spark.yml) in a
child process. It reads the 300 sample tiles and decodes them in Python workers; the test kills a
worker by PID while it is busy, then kills the idle workers left in Spark's reuse pool, and the
results must be identical to an undisturbed pass each time.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, SAMPLE_TILES

pytestmark = pytest.mark.slow  # kedro subprocesses, Spark jobs or servers

CHILD = r"""
import hashlib, json, os, sys, time
from pathlib import Path
from kedro.config import OmegaConfigLoader
from aerial_kedro.settings import CONFIG_LOADER_ARGS
from aerial_kedro.hooks import start_spark

conf_root, tiles, work = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
conf = dict(OmegaConfigLoader(conf_root, env="local", **CONFIG_LOADER_ARGS)["spark"])
conf["spark.driver.memory"] = "1g"
spark = start_spark(conf)
print(json.dumps({"master": spark.sparkContext.master}), flush=True)
paths = sorted(str(p) for p in tiles.rglob("*.jpg"))

def tile_stats(block_on):
    def run(rows):
        import numpy as np
        from PIL import Image
        from pyspark import TaskContext
        context = TaskContext.get()
        (work / "workers").mkdir(exist_ok=True)
        (work / "workers" / str(os.getpid())).touch()
        if context.partitionId() == block_on and context.attemptNumber() == 0:
            (work / "busy.pid").write_text(str(os.getpid()))
            time.sleep(120)  # until the test kills this worker
        for path in rows:
            data = Path(path).read_bytes()
            pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64)
            yield path, hashlib.sha256(data).hexdigest(), pixels.mean(axis=(0, 1)).round(6).tolist()
    return sorted(spark.sparkContext.parallelize(paths, 6).mapPartitions(run).collect())

def report(name, rows):
    print(json.dumps({name: rows}), flush=True)

report("reference", tile_stats(block_on=-1))
report("busy_kill", tile_stats(block_on=3))
(work / "idle.ready").write_text(" ".join(p.name for p in (work / "workers").iterdir()))
while not (work / "idle.killed").exists():
    time.sleep(0.1)
report("after_idle_kill", tile_stats(block_on=-1))
spark.stop()
"""


def wait_for(path: Path, child: subprocess.Popen, log: Path, seconds: float = 240) -> str:
    deadline = time.monotonic() + seconds
    while not path.exists() or not path.read_text():
        assert child.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)
    return path.read_text()


def is_gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def test_killed_python_workers_are_retried_with_identical_results(tmp_path):
    log = tmp_path / "child.log"  # a file, not a pipe: nobody reads a pipe while the test waits
    with log.open("w") as out:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(PROJECT_ROOT / "conf"), str(SAMPLE_TILES), str(tmp_path)],
            cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYSPARK_PYTHON": sys.executable},
        )
    try:
        busy = int(wait_for(tmp_path / "busy.pid", child, log))
        os.kill(busy, signal.SIGKILL)  # a busy worker dies mid-task (OOM killer, segfault)
        idle = [int(pid) for pid in wait_for(tmp_path / "idle.ready", child, log).split() if int(pid) != busy]
        for pid in idle:
            if not is_gone(pid):
                os.kill(pid, signal.SIGKILL)  # idle workers in the reuse pool die
        deadline = time.monotonic() + 10
        while not all(is_gone(pid) for pid in idle) and time.monotonic() < deadline:
            time.sleep(0.05)
        (tmp_path / "idle.killed").touch()
        child.wait(timeout=600)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    output = log.read_text()
    assert child.returncode == 0, output[-4000:]
    results = {}
    for line in output.splitlines():
        if line.startswith("{"):
            results.update(json.loads(line))
    assert results["master"].startswith("local[") and "," in results["master"]  # local[N,F]: F attempts
    assert len(results["reference"]) == 300 and idle
    assert results["busy_kill"] == results["reference"]
    assert results["after_idle_kill"] == results["reference"]
