"""Throughput of the Spark scoring path against a bare loop doing the same work on the same chips and cores.

    .venv/bin/python benchmarks/score.py [--cores 2] [--rounds 2] [--chunk-size 512] [--models DIR]
        [--tasks-per-slot N] [RASTER ...]

Needs the models `train` wrote under data/06_models (featurizer ONNX + spec, the classifier;
Kedro-versioned folders are read at their newest version), or ``--models`` pointing at a copy.

* Spark paths: exactly what `kedro run --pipelines=score` runs for the chips - the
  ``score_chunks`` node's Spark jobs (each task reads its own chip windows, featurizes with
  onnxruntime and classifies) saved through ChunkedParquetDataset (Parquet partitions +
  completion markers), on ``local[cores]`` with one onnxruntime thread per task, each job cut
  into shrinking tasks as ``scoring.tasks_per_slot`` says (``--tasks-per-slot 2``: equal
  quarters, as before). A linear model (the default logistic regression) runs twice: classified
  inside the Python worker (what a run does, issue 23) and in the JVM (``head_in_worker=False``,
  the path of every other model); the two outputs are then compared chip by chip (class and
  probabilities). Python workers are warmed up first (their start-up is reported separately).
* ``--mosaic N``: the first raster repeated N x N in a VRT (12 x 12 of the Czech scene is
  ~72,000 chips, the seed's county), scored for real, so the 67,000-chip time is measured
  rather than projected; ``--spark-only`` skips the bare loop there.
* Bare loop: the worker's own code without Spark - ``featurize_items`` (chip read with its
  empty check, clouds and change descriptors, network) and the linear head (``apply_head``) over
  the same plan, one chunk at a time - in two forms: one process with ``cores`` intra-op threads,
  and ``cores`` forked processes with one thread and an equal share each (Spark's shape). The
  faster is the denominator of the ratios; no output is written.

Rounds alternate bare and Spark runs; the best round of each is compared, since other work on a
shared machine can only slow a round down. Each path is also measured in CPU time (its whole
process tree: driver, JVM and Python workers for Spark), which other load barely changes:
chips per CPU-second x cores is what the path gives on that many dedicated cores. Prints
chips/s, the ratios (target, issue 23: >= 0.95 wall-clock and CPU time) and the time for
67,000 chips (target <= 3 min).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import yaml

from aerial_kedro.chips.settings import ScoringSettings

ROOT = Path(__file__).resolve().parents[1]
RASTERS = ROOT.parent / "shared" / "data" / "rasters"
DEFAULT_RASTERS = [
    RASTERS / "czech_s2_tci_20220319.tif",
    RASTERS / "czech_s2_tci_20220316_cloudy.tif",
]
TARGET_CHIPS = 67_000
DAEMON_SETTING = "spark.python.daemon.module"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields after "pid (comm)"


def tree_cpu_seconds(root: int) -> float:
    """CPU seconds used so far by ``root`` and its descendants (Linux /proc; 0 elsewhere).

    Counts live processes' own time plus the time of children they already reaped, so Spark's
    JVM, its Python daemon and the reused Python workers are all included.
    """
    stats = {int(p.name): _proc_stat(int(p.name)) for p in Path("/proc").glob("[0-9]*")}
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        if fields:
            children.setdefault(int(fields[1]), []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        fields = stats.get(pid)
        if fields:
            total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
        todo += children.get(pid, [])
    return total / CLOCK_TICKS


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rasters", nargs="*", type=Path, default=DEFAULT_RASTERS)
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--chunk-size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--tasks-per-slot",
        type=int,
        default=yaml.safe_load((ROOT / "conf/base/parameters_scoring.yml").read_text())["scoring"][
            "tasks_per_slot"
        ],
        help="scoring.tasks_per_slot (default: the project's): rounds of shrinking tasks per job",
    )
    parser.add_argument("--models", type=Path, default=ROOT / "data" / "06_models")
    parser.add_argument("--featurizer", default="efficientnet_lite0")
    parser.add_argument("--model", default="logistic_regression")
    parser.add_argument(
        "--mosaic",
        type=int,
        default=0,
        help="score an N x N mosaic (a VRT repeating the first raster side by side) instead; "
        "12 makes ~66,000 chips of the Czech scene, the county of the target",
    )
    parser.add_argument("--spark-only", action="store_true", help="skip the bare loop")
    parser.add_argument(
        "--jvm-only", action="store_true", help="only the JVM classifier path (as before issue 23)"
    )
    parser.add_argument(
        "--worker-only", action="store_true", help="only the in-worker classifier path (linear models)"
    )
    return parser.parse_args()


def mosaic_vrt(raster: Path, n: int, folder: Path) -> Path:
    """A VRT placing ``n x n`` copies of ``raster`` side by side on its own grid, so a county-sized
    area is scored for real (every chip read, featurized, classified and written)."""
    import rasterio

    with rasterio.open(raster) as src:
        width, height, count = src.width, src.height, src.count
        t, wkt, dtype = src.transform, src.crs.to_wkt(), src.dtypes[0]
    gdal_type = {"uint8": "Byte", "uint16": "UInt16"}[dtype]
    bands = []
    for band in range(1, count + 1):
        sources = "".join(
            f'<SimpleSource><SourceFilename relativeToVRT="0">{raster}</SourceFilename>'
            f"<SourceBand>{band}</SourceBand>"
            f'<SrcRect xOff="0" yOff="0" xSize="{width}" ySize="{height}"/>'
            f'<DstRect xOff="{i * width}" yOff="{j * height}" xSize="{width}" ySize="{height}"/>'
            "</SimpleSource>"
            for j in range(n)
            for i in range(n)
        )
        bands.append(f'<VRTRasterBand dataType="{gdal_type}" band="{band}">{sources}</VRTRasterBand>')
    vrt = (
        f'<VRTDataset rasterXSize="{width * n}" rasterYSize="{height * n}">'
        f"<SRS>{escape(wkt)}</SRS>"
        f"<GeoTransform>{t.c}, {t.a}, 0, {t.f}, 0, {t.e}</GeoTransform>"
        f"{''.join(bands)}</VRTDataset>"
    )
    path = folder / f"mosaic_{n}x{n}.vrt"
    path.write_text(vrt)
    return path


def start_spark(cores: int):
    from aerial_kedro.hooks import start_spark as start_project_spark

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    return start_project_spark(
        {
            "spark.master": f"local[{cores}]",
            "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1",
            "spark.driver.memory": "4g",
            "spark.ui.enabled": False,
            "spark.ui.showConsoleProgress": False,
            "spark.sql.execution.arrow.pyspark.enabled": True,
            "spark.sql.execution.arrow.maxRecordsPerBatch": 2048,
            "spark.sql.sources.partitionOverwriteMode": "dynamic",
            "spark.sql.shuffle.partitions": cores * 4,
            # The worker daemon of every run (conf/base/spark.yml).
            DAEMON_SETTING: yaml.safe_load((ROOT / "conf/base/spark.yml").read_text())[DAEMON_SETTING],
        }
    )


def settings_for(rasters: list[Path], args: argparse.Namespace) -> ScoringSettings:
    scoring = {
        "model": args.model,
        "chip_px": 64,
        "resolution": 10.0,
        "bands": [1, 2, 3],
        "max_empty_fraction": 0.5,
        "chunk_size": args.chunk_size,
        "chunks_per_job": None,
        "tasks_per_slot": args.tasks_per_slot,
        "batch_size": args.batch_size,
        "threads_per_task": 1,
        "max_chunks": None,
        "restart": True,
        "smoothing": False,
        "allow_vrt": bool(args.mosaic),
    }
    return ScoringSettings.from_params(str(rasters[0]), scoring)


def spark_round(
    spark, model, onnx, spec, plan, run, settings, info, output: Path, head_in_worker: bool
) -> tuple[float, float]:
    """(wall, CPU) seconds for the score_chunks node's jobs over the plan, saved like the pipeline.

    CPU counts this driver process, the JVM and the Python workers.
    """
    from aerial_kedro.datasets import ChunkedParquetDataset
    from aerial_kedro.pipelines.scoring.nodes import score_chunks

    dataset = ChunkedParquetDataset(filepath=str(output))
    jvm = spark.sparkContext._gateway.proc.pid
    cpu_started = tree_cpu_seconds(jvm) + time.process_time()
    started = time.perf_counter()
    for chunks in score_chunks(model, onnx, spec, plan, run, {}, settings, info, head_in_worker):
        dataset.save(chunks)
    wall = time.perf_counter() - started
    return wall, tree_cpu_seconds(jvm) + time.process_time() - cpu_started


def bare_score(plan, featurizer, head, settings) -> int:
    """What a Spark task's Python code does to its plan rows, in this process without Spark:
    read each chip (empty check, clouds, change descriptors), featurize, apply the head."""
    from aerial_kedro.chips.inference import apply_head, featurize_items
    from aerial_kedro.geo.chip_reader import ChipReader

    done = 0
    with ChipReader(bands=list(settings.bands)) as reader:
        for _, frame in plan.groupby("chunk", sort=True):
            out = featurize_items(
                frame, reader, featurizer, settings.batch_size, settings.max_empty_fraction
            )
            if head is not None:
                out = apply_head(out, head)
            done += len(out)
    return done


_BARE: dict = {}


def _bare_init(onnx: bytes, spec_dict: dict) -> None:
    from aerial_kedro.featurizers.runner import OnnxFeaturizer
    from aerial_kedro.featurizers.spec import FeaturizerSpec

    featurizer = OnnxFeaturizer(onnx, FeaturizerSpec.from_dict(spec_dict), 1)
    featurizer.features([np.zeros((64, 64, 3), np.uint8)] * 4)  # first-run allocations
    _BARE["featurizer"] = featurizer


def _bare_share(bounds: tuple[int, int]) -> tuple[int, float]:
    start, stop = bounds
    cpu = time.process_time()
    done = bare_score(_BARE["plan"].iloc[start:stop], _BARE["featurizer"], _BARE["head"], _BARE["settings"])
    return done, time.process_time() - cpu


def bare_rounds(plan, onnx: bytes, spec_dict: dict, head, settings, cores: int, rounds: int) -> dict:
    """(wall, CPU) seconds of each round of the bare loop in two forms on ``cores`` cores: one
    process with ``cores`` intra-op threads, and ``cores`` forked processes with one thread and
    half the chips each (Spark's shape: one worker and session per task slot)."""
    from aerial_kedro.featurizers.runner import OnnxFeaturizer
    from aerial_kedro.featurizers.spec import FeaturizerSpec

    threaded = OnnxFeaturizer(onnx, FeaturizerSpec.from_dict(spec_dict), cores)
    threaded.features([np.zeros((64, 64, 3), np.uint8)] * 4)
    _BARE.update(plan=plan, head=head, settings=settings)
    edges = np.linspace(0, len(plan), cores + 1).astype(int)
    shares = list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))
    timings: dict[str, list[tuple[float, float]]] = {"threads": [], "processes": []}
    context = multiprocessing.get_context("fork")
    with context.Pool(cores, initializer=_bare_init, initargs=(onnx, spec_dict)) as pool:
        pool.map(_bare_share, [(0, 1)] * cores)  # every worker initialised before timing
        for _ in range(rounds):
            cpu, started = time.process_time(), time.perf_counter()
            assert bare_score(plan, threaded, head, settings) == len(plan)
            timings["threads"].append((time.perf_counter() - started, time.process_time() - cpu))
            started = time.perf_counter()
            results = pool.map(_bare_share, shares, chunksize=1)
            assert sum(done for done, _ in results) == len(plan)
            timings["processes"].append((time.perf_counter() - started, sum(c for _, c in results)))
    return timings


def compare_paths(spark, worker_output: Path, jvm_output: Path) -> str:
    """How the two Spark paths' prediction rows differ: chips of another class, largest
    probability difference."""
    from pyspark.sql import functions as F

    key = ["source", "chip_id"]
    columns = [*key, "status", "class_index", "probabilities"]
    worker = spark.read.parquet(str(worker_output)).select(*columns)
    jvm = spark.read.parquet(str(jvm_output)).select(*columns)
    joined = worker.alias("w").join(jvm.alias("j"), key)
    differing = joined.where(
        ~F.col("w.class_index").eqNullSafe(F.col("j.class_index"))
        | (F.col("w.status") != F.col("j.status"))
    ).count()
    difference = F.zip_with(
        F.col("w.probabilities"), F.col("j.probabilities"), lambda a, b: F.abs(a - b)
    )
    largest = joined.select(F.max(F.array_max(difference))).first()[0]
    return (
        f"{joined.count()} chips in both outputs, {differing} of another class or status; "
        f"largest probability difference {largest if largest is not None else 0:.2g} (float32)"
    )


def benchmark_run(run_id: str, plan, n_inputs: int):
    """The scoring run the benchmark's plan is: 8-bit reading (no radiometry), no overlap."""
    from datetime import datetime, timezone

    from aerial_kedro.chips.records import ScoringRun

    return ScoringRun(
        run_id=run_id, source="benchmark", source_name="benchmark", kind="rasters",
        n_items=len(plan), n_chunks=int(plan["chunk"].max()) + 1, n_inputs=n_inputs,
        n_rejected=0, radiometry=None, chip_stride_px=None, max_empty_fraction=0.5,
        radiometry_reference=None, radiometry_fit=None,
        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )  # fmt: skip


def plan_all(rasters, settings, info):
    """One plan per raster (each scene scored on its own, like separate runs), concatenated."""
    from aerial_kedro.chips.planning import plan_from_chips
    from aerial_kedro.geo.chip_planning import plan_chips_from_paths
    grid = settings.plan.tiled_grid
    chips = []
    for raster in rasters:
        planned, problems = plan_chips_from_paths([str(raster)], grid)
        if problems:
            raise SystemExit(f"cannot plan {raster}: {problems[0]}")
        chips += planned
    # Chip ids repeat when two rasters share a footprint; they are separate items here.
    plan = plan_from_chips(chips, settings.chunk_size)
    run = benchmark_run("benchmark", plan, len(rasters))
    return chips, plan, run


def report(label: str, chips: int, wall: list[float], cpu: list[float], cores: int) -> float:
    """Print a path's best wall-clock rate and its CPU-time rate; return the best wall rate."""
    best = chips / min(wall)
    per_core_second = chips / min(cpu)
    print(
        f"{label:<28}: {best:6.1f} chips/s wall-clock (median {chips / np.median(wall):.1f}); "
        f"{per_core_second:5.1f} chips per CPU-second = {per_core_second * cores:6.1f} chips/s "
        f"on {cores} dedicated cores"
    )
    return per_core_second * cores


def newest_version(path: Path) -> Path:
    """``path`` itself, or its newest Kedro version (``<path>/<version>/<name>``) when versioned."""
    versions = sorted(p for p in path.iterdir() if p.is_dir() and (p / path.name).exists()) if path.is_dir() else []
    return versions[-1] / path.name if versions else path


def main() -> None:
    args = parse_args()
    from pyspark.ml import PipelineModel

    from aerial_kedro.models.contract import predictor
    from aerial_kedro.models.linear_head import head_of
    from aerial_kedro.pipelines.scoring.nodes import describe_model

    featurizers = args.models / "featurizers"
    onnx = newest_version(featurizers / f"{args.featurizer}.onnx").read_bytes()
    spec = json.loads(newest_version(featurizers / f"{args.featurizer}.json").read_text())
    spark = start_spark(args.cores)
    model = PipelineModel.load(str(newest_version(args.models / args.featurizer / args.model)))
    choice = head_of(predictor(model))
    scratch_root = Path(tempfile.mkdtemp(prefix="score-bench-"))
    rasters = [mosaic_vrt(args.rasters[0].resolve(), args.mosaic, scratch_root)] if args.mosaic else args.rasters
    settings = settings_for(rasters, args)
    info = describe_model(model, spec, settings)
    chips, plan, run = plan_all(rasters, settings, info)
    n = len(chips)
    print(
        f"{n} chips from {len(rasters)} raster(s){f' ({args.mosaic}x{args.mosaic} mosaic VRT)' if args.mosaic else ''}; {run.n_chunks} chunks of "
        f"<= {args.chunk_size}; {args.cores} cores; load average {os.getloadavg()[0]:.1f}"
    )
    print(f"classifier {info.classifier}: {'in the Python worker, ' if choice.in_worker else 'JVM only, '}{choice.reason}")
    paths = {"worker": True} if args.jvm_only is False and choice.in_worker else {}
    if not args.worker_only or not paths:
        paths["jvm"] = False

    bare: dict = {"threads": [], "processes": []}
    spark_times: dict[str, list[tuple[float, float]]] = {name: [] for name in paths}
    with tempfile.TemporaryDirectory() as scratch:
        warmup_plan = plan.iloc[: 4 * args.cores].assign(chunk=0)
        warmup_run = benchmark_run("warmup", warmup_plan, 1)
        for name, in_worker in paths.items():
            warmup, _ = spark_round(
                spark, model, onnx, spec, warmup_plan, warmup_run, settings, info,
                Path(scratch) / f"w-{name}", in_worker,
            )  # fmt: skip
            print(f"Spark warm-up, classifier {name} (Python workers + sessions): {warmup:.1f} s")
        for number in range(1, args.rounds + 1):
            line = [f"round {number}:"]
            if not args.spark_only:
                timings = bare_rounds(plan, onnx, spec, choice.head, settings, args.cores, 1)
                for form, values in timings.items():
                    bare[form] += values
                best = min(t[0] for values in timings.values() for t in values)
                line.append(f"bare {n / best:6.1f} chips/s,")
            for name, in_worker in paths.items():
                output = Path(scratch) / f"{name}{number}"
                timing = spark_round(spark, model, onnx, spec, plan, run, settings, info, output, in_worker)
                spark_times[name].append(timing)
                assert spark.read.parquet(str(output)).count() == n
                line.append(f"spark ({name}) {n / timing[0]:6.1f} chips/s in {timing[0]:.0f} s,")
            print(" ".join(line), f"load average {os.getloadavg()[0]:.1f}")
        if len(paths) == 2:
            last = args.rounds
            print("worker vs JVM classifier:", compare_paths(spark, Path(scratch) / f"worker{last}", Path(scratch) / f"jvm{last}"))
    spark.stop()
    shutil.rmtree(scratch_root, ignore_errors=True)

    print()
    rates = {}
    for name, timings in spark_times.items():
        label = f"Spark, classifier in {'the worker' if name == 'worker' else 'the JVM'}"
        rates[name] = report(label, n, [t[0] for t in timings], [t[1] for t in timings], args.cores)
    bare_wall = bare_cpu = None
    for form, timings in bare.items():
        if timings:
            label = f"bare, {'1 process x ' + str(args.cores) + ' threads' if form == 'threads' else str(args.cores) + ' processes x 1 thread'}"
            report(label, n, [t[0] for t in timings], [t[1] for t in timings], args.cores)
            wall, cpu = min(t[0] for t in timings), min(t[1] for t in timings)
            bare_wall = wall if bare_wall is None else min(bare_wall, wall)
            bare_cpu = cpu if bare_cpu is None else min(bare_cpu, cpu)
    if bare_wall is not None and bare_cpu is not None:
        for name, timings in spark_times.items():
            wall, cpu = min(t[0] for t in timings), min(t[1] for t in timings)
            print(
                f"ratio Spark ({name}) / best bare : {bare_wall / wall:.2f} wall-clock, "
                f"{bare_cpu / cpu:.2f} CPU-time (target >= 0.95); "
                f"CPU ms per chip {1000 * cpu / n:.1f} vs {1000 * bare_cpu / n:.1f}"
            )
    best_name = "worker" if "worker" in spark_times else "jvm"
    best_wall = min(t[0] for t in spark_times[best_name])
    print(
        f"{n:,} chips took {best_wall / 60:.1f} min with the classifier in the {best_name}; projected for "
        f"{TARGET_CHIPS:,} chips: {TARGET_CHIPS / (n / best_wall) / 60:.1f} min at that rate, "
        f"{TARGET_CHIPS / rates[best_name] / 60:.1f} min on {args.cores} dedicated cores (target <= 3 min)"
    )


if __name__ == "__main__":
    sys.exit(main())
