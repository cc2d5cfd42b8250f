"""Featurization throughput: Spark beside a bare onnxruntime loop on the same cores.

    python benchmarks/featurize.py                                  # 300-tile sample, ort backend
    python benchmarks/featurize.py --tiles ../shared/data/eurosat --limit 3000 --backends ort,synapseml
    python benchmarks/featurize.py --tiles ../shared/data/eurosat --limit 3000 --precision int8 --input-size 128

Bare = OnnxFeaturizer (aerial_kedro.featurizers.runner) over the same tiles' bytes held in memory,
decoded a batch at a time as a Spark task does (decode is part of the work, disk reads are not), in
two forms on ``--cores`` cores: one process with that many intra-op threads, and that many processes
with one thread each (what Spark's ort backend does: one Python worker and one session per task
slot). The faster of the two is "best bare", the denominator of every ratio. Spark reads the files
itself (binaryFile), decodes, resizes and runs the network; its Python workers and sessions are
warmed up first, as the bare sessions are built before timing. Every figure is the best of
``--repeats`` runs. The featurizer is built with conf/base's ``featurization.options`` (what
`kedro run` builds); ``--input-size``, ``--precision`` and ``--tta`` override them.

Beside tiles/s, the CPU time spent per tile (all processes involved: for Spark the JVM and its
Python workers) is printed: on a machine where other processes compete for the cores, wall-clock
ratios measure the neighbours as much as the code, CPU time per tile much less so.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from aerial_kedro.featurizers.decode import decode_tile
from aerial_kedro.featurizers.registry import build_featurizer
from aerial_kedro.featurizers.runner import OnnxFeaturizer
from aerial_kedro.featurizers.spec import FeaturizerSpec
from aerial_kedro.tile_files import is_tile_name

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TILES = PROJECT_ROOT.parent / "shared" / "data" / "eurosat-sample"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiles", type=Path, default=DEFAULT_TILES, help="folder of class folders of tiles")
    parser.add_argument("--limit", type=int, default=None, help="at most this many tiles, spread over the classes")
    parser.add_argument("--featurizer", default="efficientnet_lite0")
    parser.add_argument("--backends", default="ort", help="comma-separated: ort, synapseml")
    parser.add_argument("--cores", type=int, default=2, help="cores for Spark (local[N]) and for the bare loops")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--partitions-per-core", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--input-size", type=int, default=None, help="override featurization.options.input_size")
    parser.add_argument("--precision", choices=("fp32", "int8"), default=None, help="override options.precision")
    parser.add_argument("--tta", action="store_true", help="override options.tta to true")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also measure Spark's own share with a network that does nothing (see spark_breakdown)",
    )
    parser.add_argument(
        "--arrow-batch",
        type=int,
        default=None,
        help="spark.sql.execution.arrow.maxRecordsPerBatch for the Spark runs (default: conf/base/spark.yml)",
    )
    return parser.parse_args()


def configured_options(args: argparse.Namespace, calibration_tiles: Path) -> dict:
    """``featurization.options`` of conf/base (what `kedro run` builds), with the command line's overrides."""
    options = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_featurization.yml").read_text())["featurization"]["options"]
    options["calibration"] = {"tiles_dir": str(calibration_tiles), "seed": 42, "count": options["calibration"]["count"]}
    if args.input_size:
        options["input_size"] = args.input_size
    if args.precision:
        options["precision"] = args.precision
    if args.tta:
        options["tta"] = True
    return options


def tile_paths(folder: Path, limit: int | None) -> list[Path]:
    """Tiles of every class folder, sorted; with ``limit``, taken round-robin across the classes."""
    classes = [sorted(p for p in d.iterdir() if is_tile_name(p.name)) for d in sorted(folder.iterdir()) if d.is_dir()]
    if not classes:
        raise SystemExit(f"--tiles {folder}: no class folders")
    interleaved = [path for group in zip(*[iter_padded(c, max(map(len, classes))) for c in classes], strict=True) for path in group if path]
    return interleaved[:limit] if limit else interleaved


def iter_padded(items: list[Path], length: int) -> list[Path | None]:
    return items + [None] * (length - len(items))


Timing = tuple[float, float]  # (wall seconds, CPU seconds)


def best_of(repeats: int, run: Callable[[], Timing]) -> Timing:
    """The run with the shortest wall time of ``repeats`` runs."""
    return min((run() for _ in range(repeats)), key=lambda timing: timing[0])


def cpu_seconds(pid: int) -> float:
    """CPU time of a process, its live descendants and its reaped children (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for index, each in enumerate([pid, *descendants(pid)]):
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        own = int(fields[11]) + int(fields[12])  # utime, stime
        children = int(fields[13]) + int(fields[14]) if index == 0 else 0  # cutime, cstime
        total += (own + children) / ticks
    return total


def descendants(pid: int) -> list[int]:
    """Live descendants; children are listed per thread (the JVM forks from its task threads)."""
    children: set[int] = set()
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:  # the process ended meanwhile
        return []
    for task in tasks:
        try:
            children.update(int(child) for child in (task / "children").read_text().split())
        except OSError:  # a thread ended between listing and reading
            continue
    return [each for child in sorted(children) for each in (child, *descendants(child))]


# ---------- bare onnxruntime ----------

def decode_and_featurize(featurizer: OnnxFeaturizer, contents: list[bytes], batch_size: int) -> int:
    """Decode and featurize tile bytes a batch at a time (the work a Spark task does); returns the count."""
    done = 0
    for start in range(0, len(contents), batch_size):
        done += len(featurizer.features([decode_tile(b) for b in contents[start : start + batch_size]], batch_size))
    return done


def bare_threads(onnx_bytes: bytes, spec: FeaturizerSpec, tiles: list[bytes], threads: int, batch_size: int, repeats: int) -> Timing:
    featurizer = OnnxFeaturizer(onnx_bytes, spec, threads)
    decode_and_featurize(featurizer, tiles[:batch_size], batch_size)  # warm-up

    def run() -> Timing:
        started, cpu = time.perf_counter(), time.process_time()
        decode_and_featurize(featurizer, tiles, batch_size)
        return time.perf_counter() - started, time.process_time() - cpu

    return best_of(repeats, run)


_WORKER: dict = {}


def _init_worker(onnx_bytes: bytes, spec_dict: dict, batch_size: int) -> None:
    featurizer = OnnxFeaturizer(onnx_bytes, FeaturizerSpec.from_dict(spec_dict), threads=1)
    decode_and_featurize(featurizer, _WORKER["tiles"][:batch_size], batch_size)  # warm-up
    _WORKER.update(featurizer=featurizer, batch_size=batch_size)


def _featurize_share(bounds: tuple[int, int]) -> tuple[int, float]:
    """(tiles featurized, CPU seconds spent) for one share."""
    start, stop = bounds
    cpu = time.process_time()
    count = decode_and_featurize(_WORKER["featurizer"], _WORKER["tiles"][start:stop], _WORKER["batch_size"])
    return count, time.process_time() - cpu


def bare_processes(onnx_bytes: bytes, spec: FeaturizerSpec, tiles: list[np.ndarray], processes: int, batch_size: int, repeats: int) -> Timing:
    """``processes`` forked workers, one single-threaded session each, an equal share of tiles each."""
    _WORKER["tiles"] = tiles  # inherited by the forked workers: no pickling of pixels
    edges = np.linspace(0, len(tiles), processes + 1).astype(int)
    shares = list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))
    context = multiprocessing.get_context("fork")
    with context.Pool(processes, initializer=_init_worker, initargs=(onnx_bytes, spec.to_dict(), batch_size)) as pool:
        pool.map(_featurize_share, [(0, 1)] * processes)  # every worker initialised before timing

        def run() -> Timing:
            started = time.perf_counter()
            results = pool.map(_featurize_share, shares, chunksize=1)
            assert sum(count for count, _ in results) == len(tiles)
            return time.perf_counter() - started, sum(cpu for _, cpu in results)

        return best_of(repeats, run)


# ---------- Spark ----------

def spark_session(cores: int, with_synapseml: bool, arrow_batch: int | None = None):
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    base = yaml.safe_load((PROJECT_ROOT / "conf/base/spark.yml").read_text())
    builder = SparkSession.builder.master(f"local[{cores}]")
    if arrow_batch:
        base["spark.sql.execution.arrow.maxRecordsPerBatch"] = arrow_batch
    for key, value in base.items():
        builder = builder.config(key, str(value).lower() if isinstance(value, bool) else str(value))
    jars = sorted(str(path) for path in (PROJECT_ROOT / ".cache/jars/synapseml").glob("*.jar"))
    if with_synapseml:
        if not jars:
            raise SystemExit("--backends synapseml: run scripts/fetch_synapseml_jars.sh first")
        builder = builder.config("spark.jars", ",".join(jars))
    spark = (
        builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false").config("spark.driver.memory", "4g").getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def spark_seconds(spark, backend: str, paths: list[Path], onnx_bytes: bytes, spec: FeaturizerSpec, args: argparse.Namespace) -> Timing:
    from aerial_kedro.pipelines.featurization.nodes import run_backend
    from aerial_kedro.spark_inference import spread_over

    def featurized(selection: list[Path]):
        tiles = spark.read.format("binaryFile").load([str(path) for path in selection]).select("path", "content")
        tiles = spread_over(tiles, args.cores * args.partitions_per_core)
        return run_backend(backend, tiles, onnx_bytes, spec, args.batch_size, 1)

    featurized(paths[: args.cores * args.partitions_per_core * 4]).write.format("noop").mode("overwrite").save()  # warm-up
    frame = featurized(paths)

    jvm = spark.sparkContext._gateway.proc.pid  # the JVM pyspark launched; Python workers are its children

    def run() -> Timing:
        started, cpu = time.perf_counter(), cpu_seconds(jvm)
        frame.write.format("noop").mode("overwrite").save()
        return time.perf_counter() - started, cpu_seconds(jvm) - cpu

    return best_of(args.repeats, run)


def spark_breakdown(spark, paths: list[Path], feature_dim: int, args: argparse.Namespace, scratch: Path) -> None:
    """Spark's own CPU per tile, step by step, with a "network" that decodes the tile and returns
    zeros: what the Spark path costs beyond the bare loop's work. The steps run as the pipeline
    does (spread_over, mapInArrow, float32_lists); indented lines are the alternatives not taken.

    Each step adds one thing to the one before; differences are what that thing costs.
    """
    import pyarrow as pa
    from pyspark.sql import functions as F

    from aerial_kedro.featurizers.decode import decode_tile as decode
    from aerial_kedro.spark_inference import float32_lists, spread_over

    partitions = args.cores * args.partitions_per_core
    scanned = spark.read.format("binaryFile").load([str(path) for path in paths]).select("path", "content")
    tiles = spread_over(scanned, partitions)
    zeros = np.zeros(feature_dim, np.float32)

    def decode_only(batches):
        for batch in batches:
            for content in batch.column("content").to_pylist():
                decode(content)
            yield pa.RecordBatch.from_arrays([batch.column("path")], names=["path"])

    def with_features(batches):
        for batch in batches:
            for content in batch.column("content").to_pylist():
                decode(content)
            features = float32_lists([zeros] * batch.num_rows)
            yield pa.RecordBatch.from_arrays([batch.column("path"), features], names=["path", "features"])

    def with_features_pandas(frames):
        for frame in frames:
            for content in frame["content"]:
                decode(content)
            yield frame[["path"]].assign(features=[zeros] * len(frame))

    def scan(frame) -> None:
        frame.write.format("noop").mode("overwrite").save()

    def read(frame):  # the bytes read, not only listed
        return frame.select("path", F.length("content").alias("size"))

    features_schema = "path string, features array<float>"
    steps = {
        "binaryFile scan, bytes read": lambda: scan(read(scanned)),
        f"+ spread over {partitions} partitions (merged)": lambda: scan(read(tiles)),
        "  a round-robin repartition instead (sorted, shuffled)": lambda: scan(read(scanned.repartition(partitions))),
        "+ Arrow in, decode in Python, path out": lambda: scan(tiles.mapInArrow(decode_only, "path string")),
        f"+ {feature_dim} float32 out (one buffer + offsets)": lambda: scan(tiles.mapInArrow(with_features, features_schema)),
        "  through mapInPandas instead (a Python float each)": lambda: scan(
            tiles.mapInPandas(with_features_pandas, features_schema)
        ),
        "+ written as Parquet (snappy)": lambda: tiles.mapInArrow(with_features, features_schema)
        .write.mode("overwrite").parquet(str(scratch / "features.parquet")),
    }
    jvm = spark.sparkContext._gateway.proc.pid
    n = len(paths)
    steps["binaryFile scan, bytes read"]()  # warm-up: Python workers, JIT
    previous = None
    print(f"Spark's own share, a network that returns zeros (Arrow batch {spark.conf.get('spark.sql.execution.arrow.maxRecordsPerBatch')}):")
    for label, step in steps.items():

        def run(step=step) -> Timing:
            started, cpu = time.perf_counter(), cpu_seconds(jvm)
            step()
            return time.perf_counter() - started, cpu_seconds(jvm) - cpu

        wall, cpu = best_of(args.repeats, run)
        ms = 1000 * cpu / n
        added = "" if previous is None or label.startswith(" ") else f" (+{ms - previous:5.2f})"
        print(f"  {label:44s} {ms:6.2f} CPU ms/tile{added}, {n / wall:7.1f} tiles/s")
        if not label.startswith(" "):
            previous = ms
    decode_cpu = time.process_time()
    for path in paths:
        decode(path.read_bytes())
    print(f"  (decoding alone, bare: {1000 * (time.process_time() - decode_cpu) / n:.2f} CPU ms/tile)")


def report(label: str, tiles: int, timing: Timing, best_wall: float, best_cpu: float) -> None:
    wall, cpu = timing
    print(
        f"{label:42s} {tiles / wall:7.1f} tiles/s = {best_wall / wall:.2f} x best bare | "
        f"{1000 * cpu / tiles:6.1f} CPU ms/tile = {best_cpu / cpu:.2f} x best bare efficiency"
    )


def main() -> None:
    args = parse_args()
    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    paths = tile_paths(args.tiles.resolve(), args.limit)
    onnx_bytes, spec = build_featurizer(args.featurizer, options=configured_options(args, args.tiles.resolve()))
    tiles = [path.read_bytes() for path in paths]  # in memory: disk is not measured, decode is
    n = len(tiles)
    print(f"{n} tiles from {args.tiles}, {spec.name} ({spec.input_size}px, {spec.feature_dim}-d, "
          f"{spec.extra.get('precision', 'fp32')}), batch {args.batch_size}, "
          f"{args.cores} cores, best of {args.repeats}; load average {os.getloadavg()[0]:.2f}")
    bare = {
        f"bare onnxruntime, 1 process x {args.cores} threads": bare_threads(onnx_bytes, spec, tiles, args.cores, args.batch_size, args.repeats),
        f"bare onnxruntime, {args.cores} processes x 1 thread": bare_processes(onnx_bytes, spec, tiles, args.cores, args.batch_size, args.repeats),
    }
    best_wall, best_cpu = min(timing[0] for timing in bare.values()), min(timing[1] for timing in bare.values())
    for label, timing in bare.items():
        report(label, n, timing, best_wall, best_cpu)
    spark = spark_session(args.cores, "synapseml" in backends, args.arrow_batch)
    for backend in backends:
        timing = spark_seconds(spark, backend, paths, onnx_bytes, spec, args)
        report(f"Spark local[{args.cores}], backend {backend}", n, timing, best_wall, best_cpu)
    if args.breakdown:
        with tempfile.TemporaryDirectory() as scratch:
            spark_breakdown(spark, paths, spec.feature_dim, args, Path(scratch))
    spark.stop()
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
