"""Threat: small files that decode large exhaust a worker's memory (issue 13, item 4).

A 46 KB PNG can hold a 4000 x 4000 single-colour image: 48 MB once decoded, and still under the
per-tile pixel cap. The inference core used to decode a whole Arrow batch before running the
network: 40 such files in one task took ~1.9 GB. What this test proves: a Spark task decodes,
resizes and featurizes ``batch_size`` items at a time, keeping at most one full-size decode, so
the Python worker's peak memory grows by a bounded amount whatever the batch holds.

Measured on the real Spark Python workers: their peak resident set (``VmHWM``) is reset through
``/proc/<pid>/clear_refs`` before the job and read after it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PIL import Image

from aerial_kedro.spark_inference import featurize_tiles_spark

pytestmark = pytest.mark.slow  # kedro subprocesses, Spark jobs or servers

N_FILES, SIDE = 40, 4000
MAX_GROWTH_MB = 400  # one 48 MB decode (+ its copy) and a batch of 224-px arrays fit many times


def solid_png(path: Path, size: int, colour: tuple[int, int, int]) -> Path:
    """A real ``size x size`` single-colour PNG (compresses ~1000:1: 4000 px = ~46 KB)."""
    Image.new("RGB", (size, size), colour).save(path, "PNG", optimize=False)
    return path


def _status_kb(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _python_descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        children = [child for child, parent in parents.items() if parent == pid]
        found += children
        todo += children
    return [pid for pid in found if "python" in _cmdline(pid)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


@pytest.fixture(scope="module")
def large_pngs(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("large_pngs")
    for number in range(N_FILES):
        solid_png(folder / f"tile_{number:02d}.png", SIDE, (number, 100, 200 - number))
    return folder


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_worker_memory_stays_bounded_over_a_batch_of_large_decodes(
    spark, large_pngs, efficientnet_lite0
):
    onnx_bytes, spec = efficientnet_lite0
    sizes = [path.stat().st_size for path in large_pngs.glob("*.png")]
    assert len(sizes) == N_FILES and max(sizes) < 60_000  # ~46 KB each, 48 MB decoded each
    tiles = spark.read.format("binaryFile").load(str(large_pngs)).select("path", "content")

    def run(frame):
        return (
            featurize_tiles_spark(frame.coalesce(1), onnx_bytes, spec, batch_size=8, threads=1)
            .select("path", "error")
            .collect()
        )

    run(tiles.limit(2))  # warm-up: Python workers and the onnxruntime session exist
    jvm = spark.sparkContext._gateway.proc.pid
    workers = _python_descendants(jvm)
    assert workers, "no Spark Python worker found"
    baseline = {}
    for pid in workers:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak RSS (VmHWM) to now
        baseline[pid] = _status_kb(pid, "VmRSS")
    floor = min(value for value in baseline.values() if value)

    rows = run(tiles)

    assert len(rows) == N_FILES and all(row["error"] is None for row in rows)
    growth_mb = max(
        ((_status_kb(pid, "VmHWM") or 0) - baseline.get(pid, floor)) / 1024
        for pid in _python_descendants(jvm)
    )
    print(f"peak Python worker growth over {N_FILES} decodes of {SIDE} px: {growth_mb:.0f} MB")
    assert growth_mb < MAX_GROWTH_MB, f"a Spark Python worker grew by {growth_mb:.0f} MB"
