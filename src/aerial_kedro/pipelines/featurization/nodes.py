"""Export the featurizer to ONNX and featurize every indexed tile with it."""

from __future__ import annotations

import logging
import time
from typing import Any

from pyspark import Accumulator, StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from aerial_kedro.featurizers.registry import build_featurizer
from aerial_kedro.featurizers.spec import FeaturizerSpec
from aerial_kedro.featurizers.synapseml import featurize_tiles_synapseml
from aerial_kedro.pipelines.featurization.settings import (
    BACKENDS,
    FeaturizationBlock,
    FeaturizationSettings,
)
from aerial_kedro.progress import progress_logger
from aerial_kedro.spark_inference import featurize_tiles_spark, spread_over, task_slots

logger = logging.getLogger(__name__)



def export_featurizer(featurizer: str, featurization: dict) -> tuple[bytes, dict]:
    """Build the featurizer's ONNX model from its pinned source weights; return bytes and spec.

    ``featurization.options`` (input_size, pooled_stages, std_stages, precision, tta, calibration) shape the
    EfficientNet-Lite featurizers; absent, the plain network is built as before. Every option ends
    up in the spec, so scoring, which loads the stored ONNX + spec, reproduces the features.
    """
    settings = FeaturizationSettings.from_params(featurizer, featurization)
    options: dict[str, Any] | None = settings.options or {}
    if options and not featurizer.startswith("efficientnet_lite"):
        logger.warning("featurization.options apply to efficientnet_lite* only; %s ignores them", featurizer)
        options = None
    onnx_bytes, spec = build_featurizer(featurizer, settings.onnx_file, options)
    logger.info(
        "Featurizer %s: input %dpx, %d features, onnx sha256 %s (source %s; options %s)",
        spec.name, spec.input_size, spec.feature_dim, spec.onnx_sha256[:12], spec.source,
        {k: v for k, v in spec.extra.items() if k in ("pooled_stages", "std_stages", "tta", "precision")} or "none",
    )
    return onnx_bytes, spec.to_dict()


def featurize_tiles(
    raw_tiles: DataFrame,
    tile_index: DataFrame,
    featurizer_onnx: bytes,
    featurizer_spec: dict,
    featurization: dict,
) -> tuple[DataFrame, DataFrame]:
    """Decode and featurize every indexed tile once.

    Returns ``features`` (tile_id, label, split, features, featurizer) and ``rejected_tiles``
    (tile_id, uri, label, reason, featurizer) for tiles that could not be decoded.
    """
    settings = FeaturizationBlock.from_params(featurization)
    spec = FeaturizerSpec.from_dict(featurizer_spec)
    spark = raw_tiles.sparkSession
    slots, cpus_per_task = task_slots(spark.conf.get, spark.sparkContext.defaultParallelism)
    threads = settings.threads_per_task or cpus_per_task
    contents = spread_over(
        raw_tiles.select(F.col("path").alias("uri"), "content"), slots * settings.partitions_per_core
    )
    tiles = indexed_contents(tile_index, contents)

    backend = settings.backend
    started = time.perf_counter()
    with progress_logger(spark, tile_index.count(), "featurize", counted=backend == "ort") as progress:
        results = run_backend(
            backend, tiles, featurizer_onnx, spec, settings.batch_size, threads, progress=progress.counter
        ).persist(StorageLevel.MEMORY_AND_DISK)
        seen = results.count()
    rejected_count = results.where(F.col("error").isNotNull()).count()
    elapsed = time.perf_counter() - started
    logger.info(
        "Featurized with %s (%s backend): seen %d = featurized %d + rejected %d in %.1f s (%.1f tiles/s, %d slots x %d threads)",
        spec.name, backend, seen, seen - rejected_count, rejected_count, elapsed, seen / max(elapsed, 1e-9), slots, threads,
    )
    featurizer_name = F.lit(spec.name).alias("featurizer")
    features = results.where(F.col("error").isNull()).select("tile_id", "label", "split", "features", featurizer_name)
    rejected = results.where(F.col("error").isNotNull()).select(
        "tile_id", "uri", "label", F.col("error").alias("reason"), featurizer_name
    )
    for row in rejected.limit(20).collect():
        logger.warning("Rejected tile %s: %s", row["uri"], row["reason"])
    return features, rejected


def indexed_contents(tile_index: DataFrame, contents: DataFrame) -> DataFrame:
    """Every indexed tile with its bytes (``content``), in the partitions of ``contents``.

    The index is broadcast to the scan (~150 bytes a tile), so the tile bytes are never
    shuffled. A tile listed but never scanned (Spark skips empty files) arrives with null
    content and is rejected as "empty file" instead of vanishing.
    """
    scanned = contents.join(F.broadcast(tile_index), on="uri", how="inner")
    skipped = tile_index.join(contents.select("uri"), on="uri", how="left_anti")
    return scanned.unionByName(skipped.withColumn("content", F.lit(None).cast("binary")))


def run_backend(
    backend: str,
    tiles: DataFrame,
    onnx_bytes: bytes,
    spec: FeaturizerSpec,
    batch_size: int,
    threads: int,
    progress: Accumulator | None = None,
) -> DataFrame:
    """Key columns + ``features`` + ``error`` from the chosen inference backend (lazy).

    ``progress`` (ort only) is an accumulator the tasks add their tile counts to.
    """
    if backend == "ort":
        return featurize_tiles_spark(tiles, onnx_bytes, spec, batch_size, threads, progress)
    if backend == "synapseml":
        return featurize_tiles_synapseml(tiles, onnx_bytes, spec, batch_size)
    raise ValueError(f"featurization.backend: '{backend}' is not allowed; allowed values: {', '.join(BACKENDS)}")
