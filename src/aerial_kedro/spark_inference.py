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
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark import Accumulator
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.pandas.types import to_arrow_schema

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


def tile_reads(contents: Sequence[bytes | None], listed: Sequence[str | None]) -> Iterator[ItemRead]:
    """Lazy item reads of tile bytes; a reason ``listed`` beside a tile (:data:`REJECT_COLUMN`)
    rejects it unread."""
    for content, reason in zip(contents, listed, strict=True):
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


def float32_lists(vectors: Sequence[np.ndarray | None], list_type: pa.ListType | None = None) -> pa.ListArray:
    """One Arrow ``list<float>`` per vector (null for None), built from one flat buffer.

    PySpark's pandas path (``mapInPandas``) turns every element of an array column into a Python
    float before Arrow sees it (pyspark.sql.pandas.types, SPARK-43579): ~5 % of a featurizing
    worker's time for 1,968 floats a tile, measured with py-spy.
    """
    lengths = np.array([0 if vector is None else len(vector) for vector in vectors], dtype=np.int64)
    offsets = np.zeros(len(vectors) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    present = [vector for vector in vectors if vector is not None]
    values = np.concatenate(present).astype(np.float32, copy=False) if present else np.zeros(0, np.float32)
    missing = pa.array([vector is None for vector in vectors], type=pa.bool_())
    return pa.ListArray.from_arrays(
        pa.array(offsets), pa.array(values), type=list_type or pa.list_(pa.float32()), mask=missing
    )


def arrow_schema(spark: SparkSession, ddl: str) -> pa.Schema:
    """The Arrow schema Spark expects back from a ``mapInArrow`` returning ``ddl`` (built on the
    driver: parsing DDL needs the JVM)."""
    return to_arrow_schema(spark.createDataFrame([], ddl).schema)


def arrow_batch(frame: pd.DataFrame, schema: pa.Schema) -> pa.RecordBatch:
    """``frame``'s columns as an Arrow batch of ``schema``; float lists from one flat buffer
    (:func:`float32_lists`), not element by element as ``mapInPandas`` converts them."""
    columns = []
    for field in schema:
        values = frame[field.name]
        if pa.types.is_list(field.type) and pa.types.is_float32(field.type.value_type):
            columns.append(float32_lists(list(values), field.type))
        else:
            columns.append(pa.Array.from_pandas(values, type=field.type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def featurize_batch(batch: pa.RecordBatch, featurizer: OnnxFeaturizer, batch_size: int) -> pa.RecordBatch:
    """``batch``'s key columns as they came, plus ``features`` (float32 list, null when not
    featurized) and ``error`` (the reason); ``content`` dropped."""
    names = batch.schema.names
    contents = batch.column("content").to_pylist()
    listed = batch.column(REJECT_COLUMN).to_pylist() if REJECT_COLUMN in names else [None] * batch.num_rows
    vectors: list[np.ndarray | None] = []
    errors: list[str | None] = []
    for vector, _, _, reason in infer_items(tile_reads(contents, listed), featurizer, batch_size):
        vectors.append(vector)
        errors.append(reason)
    keys = [name for name in names if name != "content"]
    columns = [batch.column(name) for name in keys] + [float32_lists(vectors), pa.array(errors, pa.string())]
    return pa.RecordBatch.from_arrays(columns, names=[*keys, "features", "error"])


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

    def infer(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        featurizer = cached_featurizer(
            lambda: model_broadcast.value, FeaturizerSpec.from_dict(spec_dict), threads
        )
        for batch in batches:
            yield featurize_batch(batch, featurizer, batch_size)
            if progress is not None:
                progress.add(batch.num_rows)

    return tiles.mapInArrow(infer, schema)


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
