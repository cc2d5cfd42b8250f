"""The one Spark inference core: items in, features out, in bounded batches, one session per worker.

Featurization (tile bytes, :func:`featurize_tiles_spark`) and scoring (raster chips and tiles,
:mod:`aerial_kedro.chips.inference`) both run here:

* an *item* is read lazily, one at a time (:func:`read_tile_bytes` for tile bytes; chip
  windows in scoring), and resized to the network's input size at once
  (:func:`fit_to_input`), so a worker holds at most one full-size decode plus ``batch_size``
  input-size arrays, never a whole Arrow batch of decoded pixels (:func:`infer_items`);
* every item ends with one status of one vocabulary (:data:`aerial_kedro.chip_rows.ITEM_STATUSES`), and a reason when
  it was not featurized: ``scored`` (went through the network), ``empty`` (read, but mostly
  nodata), ``unreadable`` (could not be read or decoded), ``rejected`` (refused before reading,
  e.g. a repeated or dangling tile listing);
* the onnxruntime session is built once per Python worker and model (:func:`cached_featurizer`).

The ONNX bytes travel to executors as a broadcast variable, never as a path on the driver's disk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd
from pyspark import Accumulator
from pyspark.sql import DataFrame

from aerial_kedro.chip_rows import REJECTED, SCORED, UNREADABLE
from aerial_kedro.featurizers.decode import TileDecodeError, decode_tile
from aerial_kedro.featurizers.preprocess import resize_rgb
from aerial_kedro.featurizers.runner import OnnxFeaturizer
from aerial_kedro.featurizers.spec import FeaturizerSpec

logger = logging.getLogger(__name__)


# (8-bit HWC pixels or None, cloud fraction or None, status, reason): what reading one item gives.
ItemRead = tuple[np.ndarray | None, float | None, str, str | None]
# (features or None, cloud fraction or None, status, reason): what inference gives for one item.
ItemResult = tuple[np.ndarray | None, float | None, str, str | None]

# Optional column of the input rows: a reason set before inference (e.g. by tile listing) makes
# the row ``rejected`` without reading its content.
REJECT_COLUMN = "reason"

# Python workers are reused across tasks (spark.python.worker.reuse), so a session built once
# serves every later partition of the same model.
_SESSIONS: dict[tuple[str, int], OnnxFeaturizer] = {}


def cached_featurizer(
    onnx_bytes_getter: Callable[[], bytes], spec: FeaturizerSpec, threads: int
) -> OnnxFeaturizer:
    """This worker's session for (model, threads), built on first use only."""
    key = (spec.onnx_sha256 or spec.name, threads)
    if key not in _SESSIONS:
        _SESSIONS[key] = OnnxFeaturizer(onnx_bytes_getter(), spec, threads)
    return _SESSIONS[key]


def read_tile_bytes(content: bytes | None) -> ItemRead:
    """One tile's bytes as an item read: decoded 8-bit RGB, or ``unreadable`` with the reason."""
    try:
        return decode_tile(content), None, SCORED, None
    except TileDecodeError as error:
        return None, None, UNREADABLE, error.reason


def fit_to_input(pixels: np.ndarray, spec: FeaturizerSpec) -> np.ndarray:
    """The pixels at the network's input size (the featurizer's own resize, done early so a
    large tile's full-size array is freed before the next item is read)."""
    return resize_rgb(pixels, spec.input_size)


def infer_items(
    reads: Iterable[ItemRead], featurizer: OnnxFeaturizer, batch_size: int
) -> Iterator[ItemResult]:
    """One result per item, in order; items are read, resized and featurized ``batch_size`` at a
    time, so memory stays bounded whatever the number or the size of the items."""
    batch_size = max(1, int(batch_size))
    pending: list[ItemRead] = []
    ready = 0
    for pixels, cloud, status, reason in reads:
        if pixels is not None:
            pixels = fit_to_input(pixels, featurizer.spec)
            ready += 1
        pending.append((pixels, cloud, status, reason))
        if ready == batch_size:
            yield from _featurize_pending(pending, featurizer, batch_size)
            pending, ready = [], 0
    yield from _featurize_pending(pending, featurizer, batch_size)


def _featurize_pending(
    pending: list[ItemRead], featurizer: OnnxFeaturizer, batch_size: int
) -> Iterator[ItemResult]:
    pixels = [read[0] for read in pending if read[0] is not None]
    vectors = iter(featurizer.features(pixels, batch_size=batch_size)) if pixels else iter(())
    for read_pixels, cloud, status, reason in pending:
        yield (next(vectors) if read_pixels is not None else None), cloud, status, reason


def tile_reads(frame: pd.DataFrame) -> Iterator[ItemRead]:
    """Lazy item reads of a frame with a ``content`` column (and optionally :data:`REJECT_COLUMN`)."""
    rejected = frame[REJECT_COLUMN] if REJECT_COLUMN in frame.columns else None
    for position, content in enumerate(frame["content"]):
        reason = None if rejected is None else rejected.iloc[position]
        if isinstance(reason, str):
            yield None, None, REJECTED, reason
        else:
            yield read_tile_bytes(content)


def decode_batch(contents: pd.Series) -> tuple[list[np.ndarray], list[int], list[str | None]]:
    """Decode every tile; return good arrays, their row positions, and a reason per row (None = ok).

    Holds every decoded tile at once: for callers that need them together (the SynapseML
    backend); Spark's own path streams through :func:`infer_items` instead.
    """
    pixels: list[np.ndarray] = []
    positions: list[int] = []
    reasons: list[str | None] = []
    for position, content in enumerate(contents):
        tile, _, _, reason = read_tile_bytes(content)
        if tile is not None:
            pixels.append(tile)
            positions.append(position)
        reasons.append(reason)
    return pixels, positions, reasons


def featurize_frame(frame: pd.DataFrame, featurizer: OnnxFeaturizer, batch_size: int) -> pd.DataFrame:
    """Add ``features`` (float32 list, None when not featurized) and ``error`` (the reason)
    columns; drop ``content``."""
    features: list[Any] = []
    errors: list[str | None] = []
    for vector, _, _, reason in infer_items(tile_reads(frame), featurizer, batch_size):
        features.append(vector)
        errors.append(reason)
    out = frame.drop(columns=["content"])
    out["features"] = features
    out["error"] = errors
    return out


def featurize_tiles_spark(
    tiles: DataFrame,
    onnx_bytes: bytes,
    spec: FeaturizerSpec,
    batch_size: int,
    threads: int,
    progress: Accumulator | None = None,
) -> DataFrame:
    """Run the featurizer over a DataFrame with a binary ``content`` column (plus any key columns),
    one Python task per partition as ``tiles`` comes (spread it first: :func:`spread_over`).

    Returns the key columns plus ``features array<float>`` and ``error string`` (the reason a
    tile was not featurized). A string column ``reason`` among the keys (set by tile listing)
    rejects its rows unread. ``progress``, an integer accumulator
    (``aerial_kedro.progress.progress_logger(...).counter``), counts every tile processed,
    rejected ones included.
    """
    spark = tiles.sparkSession
    model_broadcast = spark.sparkContext.broadcast(onnx_bytes)
    spec_dict = spec.to_dict()
    key_fields = [field for field in tiles.schema.fields if field.name != "content"]
    schema = ", ".join(f"`{field.name}` {field.dataType.simpleString()}" for field in key_fields)
    schema += ", features array<float>, error string"

    def infer(frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        featurizer = cached_featurizer(
            lambda: model_broadcast.value, FeaturizerSpec.from_dict(spec_dict), threads
        )
        for frame in frames:
            yield featurize_frame(frame, featurizer, batch_size)
            if progress is not None:
                progress.add(len(frame))

    return tiles.mapInPandas(infer, schema)


def spread_over(frame: DataFrame, partitions: int) -> DataFrame:
    """``frame`` (a file scan, or any frame whose partitioning is cheap to plan) in ``partitions``
    partitions for inference, moving no bytes when it can.

    A scan with at least that many partitions is merged (``coalesce``): Spark packs a scan's
    files by count, so the merged partitions hold about equal numbers of tiles. Only a scan
    with fewer is shuffled: a round-robin ``repartition`` first sorts every row, tile bytes
    included, so that a retried task gets the same rows (spark.sql.execution.sortBeforeRepartition),
    which cost ~0.5 JVM CPU ms per tile beside a ~5 ms network (docs/performance.md).
    """
    if frame.rdd.getNumPartitions() >= partitions:
        return frame.coalesce(partitions)
    return frame.repartition(partitions)


def task_slots(
    spark_conf_get: Callable[[str, str], str | None], default_parallelism: int
) -> tuple[int, int]:
    """(concurrent task slots, cores per task) of the running Spark application.

    ``spark_conf_get`` is ``RuntimeConfig.get``: given a default, it never returns None.
    """
    cpus = spark_conf_get("spark.task.cpus", "1")
    if cpus is None:
        raise ValueError("spark.task.cpus has no value")
    cpus_per_task = max(1, int(cpus))
    return max(1, default_parallelism // cpus_per_task), cpus_per_task
