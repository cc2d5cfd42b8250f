"""Driver-side progress for long Spark jobs: items done / total, items/s and ETA at a steady interval.

    with progress_logger(spark, total=tile_count, label="featurize") as progress:
        results = featurize_tiles_spark(..., progress=progress.counter).persist()
        results.count()

logs every ``interval_s`` seconds::

    featurize: 12,800/27,000 tiles (47 %), 126 tiles/s, ETA 1m52s [stage 3: 4/8 tasks done, 2 running]

Items are counted by a Spark accumulator that the job's Python function increments per item
(``progress.counter.add(len(frame))``), or the driver after each of several jobs. Spark merges accumulator updates into the driver when a
task *finishes*, so the count moves in steps of one task's items; more, smaller partitions give
smoother progress. The bracket shows the running stage's task counts from Spark's status tracker,
which move between those steps. The rate counts from the first finished items on, so that Spark and
onnxruntime start-up do not weigh on the ETA; the final line gives the average over the whole block.

A job whose items cannot be counted (JVM-side inference, e.g. SynapseML) uses ``counted=False``:
lines then show the elapsed time and the stage's tasks only, never a made-up item count.

Work that reports nothing until it returns (a Spark ML ``fit``) gets a :class:`Heartbeat`
instead: ``still fitting random_forest: 1m30s [stage 42: 3/8 tasks done, 2 running]`` every
30 s, started and stopped around the modeling nodes by :class:`FitHeartbeatHooks`.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from kedro.framework.hooks import hook_impl
from pyspark import Accumulator
from pyspark.sql import SparkSession

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StageTasks:
    """Task counts of one running Spark stage."""

    stage_id: int
    done: int
    total: int
    running: int


def format_duration(seconds: float) -> str:
    """``45s``, ``1m52s``, ``2h05m``."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def format_progress(label: str, done: int, total: int, rate: float | None, unit: str = "tiles",
                    stage: StageTasks | None = None) -> str:
    """One progress line: done/total, percent, rate (items/s) and ETA (``?`` while the rate is unknown)."""
    percent = min(100, int(100 * done / total)) if total else 100
    line = f"{label}: {done:,}/{total:,} {unit} ({percent} %)"
    if rate:
        line += f", {rate:,.0f} {unit}/s, ETA {format_duration(max(0, total - done) / rate)}"
    else:
        line += ", ETA ?"
    return line + _stage_text(stage)


def uncounted_progress(label: str, total: int, elapsed_s: float, unit: str = "tiles",
                       stage: StageTasks | None = None) -> str:
    """Progress line of a job whose items are not counted: elapsed time and the stage's tasks."""
    line = f"{label}: {total:,} {unit}, running for {format_duration(elapsed_s)}"
    return line + _stage_text(stage)


def _stage_text(stage: StageTasks | None) -> str:
    if stage is None:
        return ""
    return f" [stage {stage.stage_id}: {stage.done}/{stage.total} tasks done, {stage.running} running]"


def throughput(done: int, elapsed_s: float, first: tuple[float, int] | None, now_s: float) -> float | None:
    """Items/s since the first items finished (``first`` = (time, count) then), else since the start."""
    if first is not None and done > first[1] and now_s > first[0]:
        return (done - first[1]) / (now_s - first[0])
    return done / elapsed_s if done > 0 and elapsed_s > 0 else None


def busiest_stage(spark: SparkSession) -> StageTasks | None:
    """The active stage with the most tasks (the job's main stage), or None when nothing runs."""
    tracker = spark.sparkContext.statusTracker()
    infos = [tracker.getStageInfo(stage_id) for stage_id in tracker.getActiveStageIds()]
    stages = [info for info in infos if info is not None]  # None: the stage ended meanwhile
    if not stages:
        return None
    stage = max(stages, key=lambda info: info.numTasks)
    return StageTasks(stage.stageId, stage.numCompletedTasks, stage.numTasks, stage.numActiveTasks)


class ProgressReporter:
    """Counts items through ``counter`` and logs a progress line every ``interval_s`` seconds."""

    def __init__(self, spark: SparkSession, total: int, label: str, interval_s: float = 10.0,
                 unit: str = "tiles", counted: bool = True) -> None:
        self.spark = spark
        self.counted = counted
        self.total = int(total)
        self.label = label
        self.interval_s = float(interval_s)
        self.unit = unit
        self.counter: Accumulator[int] = spark.sparkContext.accumulator(0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"progress-{label}", daemon=True)
        self._started = time.perf_counter()
        self._first: tuple[float, int] | None = None  # (time, count) when items were first counted

    @property
    def done(self) -> int:
        return int(self.counter.value)

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self._started

    def start(self) -> None:
        self._started = time.perf_counter()
        self._thread.start()

    def stop(self, failed: bool = False) -> None:
        self._stop.set()
        self._thread.join()
        done, elapsed = self.done, self.elapsed_s
        if failed:
            logger.warning("%s: stopped at %s/%s %s after %s", self.label, f"{done:,}", f"{self.total:,}",
                        self.unit, format_duration(elapsed))
            return
        if not self.counted:
            logger.info("%s: done in %s (%s %s)", self.label, format_duration(elapsed), f"{self.total:,}", self.unit)
            return
        rate = done / elapsed if elapsed > 0 else 0.0
        logger.info("%s: done, %s/%s %s in %s (%s %s/s)", self.label, f"{done:,}", f"{self.total:,}",
                    self.unit, format_duration(elapsed), f"{rate:,.0f}", self.unit)

    def line(self) -> str:
        if not self.counted:
            return uncounted_progress(self.label, self.total, self.elapsed_s, self.unit, busiest_stage(self.spark))
        now, done = time.perf_counter(), self.done
        if self._first is None and done > 0:
            self._first = (now, done)
        rate = throughput(done, now - self._started, self._first, now)
        return format_progress(self.label, done, self.total, rate, self.unit, busiest_stage(self.spark))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            logger.info(self.line())


@contextmanager
def progress_logger(spark: SparkSession, total: int, label: str, interval_s: float = 10.0,
                    unit: str = "tiles", counted: bool = True) -> Iterator[ProgressReporter]:
    """Log ``label: done/total unit (p %), rate, ETA`` every ``interval_s`` s while the block runs.

    The job inside must add its processed items to the yielded reporter's ``counter``
    (``counted=False``: it cannot, and only elapsed time and task counts are logged).
    """
    reporter = ProgressReporter(spark, total, label, interval_s, unit, counted)
    reporter.start()
    try:
        yield reporter
    except BaseException:
        reporter.stop(failed=True)
        raise
    reporter.stop()


# ---------------------------------------------------------------------------------- heartbeat

HEARTBEAT_INTERVAL_S = 30.0
# Overrides the interval of FitHeartbeatHooks (seconds), e.g. for a test that fits in a few seconds.
HEARTBEAT_VARIABLE = "AERIAL_KEDRO_HEARTBEAT_S"
# Nodes whose work is one long Spark call that reports nothing until it returns: classifier fits.
HEARTBEAT_MODULES = ("aerial_kedro.pipelines.modeling",)


def heartbeat_line(label: str, activity: str, elapsed_s: float, stage: StageTasks | None = None) -> str:
    """``still fitting random_forest: 1m30s [stage 42: 3/8 tasks done, 2 running]``."""
    return f"still {activity} {label}: {format_duration(elapsed_s)}{_stage_text(stage)}"


class Heartbeat:
    """Logs :func:`heartbeat_line` every ``interval_s`` seconds from a daemon thread until stopped.

    For work that cannot count its items (a Spark ML ``fit``): it says the run is alive, for how
    long it has been at it and, with ``spark``, the running stage's task counts.
    """

    def __init__(self, label: str, activity: str = "running", interval_s: float = HEARTBEAT_INTERVAL_S,
                 spark: SparkSession | None = None) -> None:
        self.label = label
        self.activity = activity
        self.interval_s = float(interval_s)
        self.spark = spark
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"heartbeat-{label}", daemon=True)
        self._started = time.perf_counter()

    def start(self) -> Heartbeat:
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def line(self) -> str:
        stage = None
        if self.spark is not None:
            try:
                stage = busiest_stage(self.spark)
            except Exception:  # noqa: BLE001 - a stopped or busy JVM must not end the heartbeat
                stage = None
        return heartbeat_line(self.label, self.activity, time.perf_counter() - self._started, stage)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            logger.info(self.line())


@contextmanager
def heartbeat(label: str, activity: str = "running", interval_s: float = HEARTBEAT_INTERVAL_S,
              spark: SparkSession | None = None) -> Iterator[Heartbeat]:
    """Log ``still <activity> <label>: <elapsed>`` every ``interval_s`` s while the block runs."""
    beat = Heartbeat(label, activity, interval_s, spark).start()
    try:
        yield beat
    finally:
        beat.stop()


class FitHeartbeatHooks:
    """A :class:`Heartbeat` while a node of :data:`HEARTBEAT_MODULES` runs (classifier fits, which
    are otherwise silent for minutes on large data): ``still fitting random_forest: 1m00s [...]``.

    Keyed on the module of the node's function, so every classifier namespace gets one. The
    interval is ``interval_s`` unless the environment variable :data:`HEARTBEAT_VARIABLE` sets it.
    """

    def __init__(self, interval_s: float = HEARTBEAT_INTERVAL_S,
                 modules: tuple[str, ...] = HEARTBEAT_MODULES) -> None:
        self.interval_s = interval_s
        self.modules = modules
        self._beats: dict[str, Heartbeat] = {}
        self._lock = threading.Lock()

    def wants(self, node: Any) -> bool:
        module = getattr(getattr(node, "func", None), "__module__", "") or ""
        return any(module == name or module.startswith(f"{name}.") for name in self.modules)

    @hook_impl
    def before_node_run(self, node: Any) -> None:
        if not self.wants(node):
            return
        label = node.namespace or node.name
        interval = float(os.environ.get(HEARTBEAT_VARIABLE) or self.interval_s)
        beat = Heartbeat(label, "fitting", interval, SparkSession.getActiveSession()).start()
        with self._lock:
            previous = self._beats.pop(node.name, None)
            self._beats[node.name] = beat
        if previous is not None:
            previous.stop()

    @hook_impl
    def after_node_run(self, node: Any) -> None:
        self._stop(node)

    @hook_impl
    def on_node_error(self, node: Any) -> None:
        self._stop(node)

    @hook_impl
    def after_pipeline_run(self) -> None:
        self.stop_all()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self.stop_all()

    def stop_all(self) -> None:
        with self._lock:
            beats, self._beats = list(self._beats.values()), {}
        for beat in beats:
            beat.stop()

    def _stop(self, node: Any) -> None:
        with self._lock:
            beat = self._beats.pop(node.name, None)
        if beat is not None:
            beat.stop()
