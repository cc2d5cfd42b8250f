"""Spark glue for ONNX inference: one onnxruntime session per Python worker, Arrow batches in and out.

The ONNX bytes travel to executors as a broadcast variable, never as a path on the driver's disk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
from pyspark import Accumulator
from pyspark.sql import DataFrame

from aerial_kedro.featurizers.decode import TileDecodeError, decode_tile
from aerial_kedro.featurizers.runner import OnnxFeaturizer
from aerial_kedro.featurizers.spec import FeaturizerSpec

logger = logging.getLogger(__name__)

# Python workers are reused across tasks (spark.python.worker.reuse), so a session built once
# serves every later partition of the same model.
_SESSIONS: dict[tuple[str, int], OnnxFeaturizer] = {}


def cached_featurizer(onnx_bytes_getter: Callable[[], bytes], spec: FeaturizerSpec, threads: int) -> OnnxFeaturizer:
    key = (spec.onnx_sha256 or spec.name, threads)
    if key not in _SESSIONS:
        _SESSIONS[key] = OnnxFeaturizer(onnx_bytes_getter(), spec, threads)
    return _SESSIONS[key]


def decode_batch(contents: pd.Series) -> tuple[list[np.ndarray], list[int], list[str | None]]:
    """Decode every tile; return good arrays, their row positions, and a reason per row (None = ok)."""
    pixels: list[np.ndarray] = []
    positions: list[int] = []
    reasons: list[str | None] = []
    for position, content in enumerate(contents):
        try:
            pixels.append(decode_tile(content))
            positions.append(position)
            reasons.append(None)
        except TileDecodeError as error:
            reasons.append(error.reason)
    return pixels, positions, reasons


def featurize_frame(frame: pd.DataFrame, featurizer: OnnxFeaturizer, batch_size: int) -> pd.DataFrame:
    """Add ``features`` (float32 list, None when rejected) and ``error`` columns; drop ``content``."""
    pixels, positions, reasons = decode_batch(frame["content"])
    vectors = featurizer.features(pixels, batch_size=batch_size)
    features: list[Any] = [None] * len(frame)
    for position, vector in zip(positions, vectors, strict=True):
        features[position] = vector
    out = frame.drop(columns=["content"])
    out["features"] = features
    out["error"] = reasons
    return out


def featurize_tiles_spark(
    tiles: DataFrame,
    onnx_bytes: bytes,
    spec: FeaturizerSpec,
    batch_size: int,
    threads: int,
    num_partitions: int,
    progress: Accumulator | None = None,
) -> DataFrame:
    """Run the featurizer over a DataFrame with a binary ``content`` column (plus any key columns).

    Returns the key columns plus ``features array<float>`` and ``error string``. ``progress``, an
    integer accumulator (``aerial_kedro.progress.progress_logger(...).counter``), counts every tile
    processed, rejected ones included.
    """
    spark = tiles.sparkSession
    model_broadcast = spark.sparkContext.broadcast(onnx_bytes)
    spec_dict = spec.to_dict()
    key_fields = [field for field in tiles.schema.fields if field.name != "content"]
    schema = ", ".join(f"`{field.name}` {field.dataType.simpleString()}" for field in key_fields)
    schema += ", features array<float>, error string"

    def infer(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        featurizer = cached_featurizer(lambda: model_broadcast.value, FeaturizerSpec.from_dict(spec_dict), threads)
        for frame in frames:
            yield featurize_frame(frame, featurizer, batch_size)
            if progress is not None:
                progress.add(len(frame))

    return tiles.repartition(num_partitions).mapInPandas(infer, schema)


def task_slots(spark_conf_get: Callable[[str, str], str], default_parallelism: int) -> tuple[int, int]:
    """(concurrent task slots, cores per task) of the running Spark application."""
    cpus_per_task = max(1, int(spark_conf_get("spark.task.cpus", "1")))
    return max(1, default_parallelism // cpus_per_task), cpus_per_task
