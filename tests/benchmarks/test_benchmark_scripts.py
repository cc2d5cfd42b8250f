"""The benchmark scripts stay runnable: each runs end to end on a few real chips or tiles.

Their figures are not checked here (they are read by people, on a quiet machine); what is checked is
that they run against the code as it is now and that what they compare agrees.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import rasterio
from conftest import PROJECT_ROOT, SHARED_DATA
from rasterio.windows import Window

CZECH_SCENE = SHARED_DATA / "rasters" / "czech_s2_tci_20220319.tif"


def run_benchmark(script: str, *args: str) -> str:
    completed = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "benchmarks" / script), *args],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


@pytest.fixture(scope="module")
def small_scene(tmp_path_factory) -> Path:
    """A 384 x 384-px window of the real Czech scene (the global chip grid fits 25 chips of 64 px)."""
    path = tmp_path_factory.mktemp("bench") / "czech_corner.tif"
    with rasterio.open(CZECH_SCENE) as source:
        window = Window(2048, 2048, 384, 384)
        profile = source.profile | {
            "width": 384, "height": 384, "transform": source.window_transform(window),
            "tiled": False, "compress": "deflate",
        }  # fmt: skip
        profile.pop("blockxsize", None), profile.pop("blockysize", None)
        with rasterio.open(path, "w", **profile) as target:
            target.write(source.read(window=window))
    return path


@pytest.mark.slow
def test_score_benchmark_compares_both_spark_paths_with_the_bare_loop(trained_project, small_scene):
    out = run_benchmark(
        "score.py", "--models", str(trained_project / "data" / "06_models"), "--rounds", "1",
        "--chunk-size", "16", str(small_scene),
    )  # fmt: skip
    chips = int(re.search(r"^(\d+) chips from 1 raster", out, re.M).group(1))
    assert chips == 25
    # The classifier applied in the Python worker and in the JVM agree chip by chip.
    assert f"{chips} chips in both outputs, 0 of another class or status" in out
    for path in ("worker", "jvm"):
        assert re.search(rf"ratio Spark \({path}\) / best bare : \d\.\d\d wall-clock", out), out


@pytest.mark.slow
def test_featurize_benchmark_runs_spark_and_the_bare_loops(sample_tiles):
    out = run_benchmark(
        "featurize.py", "--tiles", str(sample_tiles), "--limit", "40", "--repeats", "1"
    )
    assert "40 tiles from" in out
    assert re.search(r"Spark local\[2\], backend ort\s+[\d.]+ tiles/s = \d\.\d\d x best bare", out), out
