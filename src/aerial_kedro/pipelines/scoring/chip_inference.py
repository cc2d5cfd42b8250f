"""Scoring inside Spark tasks: each task reads only its own chips (or tiles), featurizes, classifies.

The driver hands Spark plan rows (metadata: chip bounds and source paths, see
:mod:`.planning`), one contiguous slice of the plan per task. In the task, a
:class:`~aerial_kedro.geo.chip_grid.ChipReader` opened once per partition reads each chip's
window (mosaicking and resampling as needed), near-empty chips are marked ``empty`` and not
featurized, and the rest go through the ONNX featurizer in batches (one onnxruntime session per
Python worker, from :func:`aerial_kedro.spark_inference.cached_featurizer`). The classifier is
the Spark ML PipelineModel, applied in the JVM to the same rows; pixels and features never
reach the driver.

Every input row gives exactly one output row, with ``status``:

* ``scored`` - class, confidence, probabilities and entropy are set;
* ``empty`` - more than ``max_empty_fraction`` of the chip is nodata or black (not classified);
* ``unreadable`` - the chip's window or the tile could not be read; ``reason`` says why.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import fsspec
import numpy as np
import pandas as pd
from pyspark import Broadcast
from pyspark.ml import PipelineModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from aerial_kedro.featurizers.decode import TileDecodeError, decode_tile
from aerial_kedro.featurizers.runner import OnnxFeaturizer
from aerial_kedro.featurizers.spec import FeaturizerSpec
from aerial_kedro.geo.chip_grid import Chip, ChipReader, RasterError, is_empty_chip
from aerial_kedro.pipelines.modeling.features import with_feature_vector
from aerial_kedro.pipelines.scoring.planning import PLAN_COLUMNS, PLAN_SCHEMA
from aerial_kedro.spark_inference import cached_featurizer

SCORED, EMPTY, UNREADABLE = "scored", "empty", "unreadable"
FEATURES_SCHEMA = f"{PLAN_SCHEMA}, status string, reason string, features array<float>"

# Columns of a predictions row, besides the partition columns run_id and chunk.
PREDICTION_COLUMNS = (
    *(column for column in PLAN_COLUMNS if column not in ("seq", "chunk")),
    "status",
    "reason",
    "predicted_label",
    "class_index",
    "confidence",
    "probabilities",
    "classes",
    "entropy",
    "model",
    "featurizer",
)

ItemRead = tuple[np.ndarray | None, str, str | None]


def read_tile(uri: str) -> ItemRead:
    """``(pixels, status, reason)`` of a plain image file (any fsspec URL or local path)."""
    try:
        with fsspec.open(uri, "rb") as stream:
            content = stream.read()
    except OSError as error:
        return None, UNREADABLE, f"cannot be read ({error})"
    try:
        return decode_tile(content), SCORED, None
    except TileDecodeError as error:
        return None, UNREADABLE, error.reason


def read_chip(chip: Chip, reader: ChipReader, max_empty_fraction: float) -> ItemRead:
    """``(pixels, status, reason)`` of a chip; pixels outside every source count as empty."""
    try:
        pixels, valid = reader.read_with_mask(chip)
    except (RasterError, ValueError) as error:
        return None, UNREADABLE, str(error)
    if is_empty_chip(np.where(valid[..., None], pixels, 0), max_empty_fraction=max_empty_fraction):
        return None, EMPTY, f"over {max_empty_fraction:.0%} nodata or black"
    return pixels, SCORED, None


def chip_from_row(row: Mapping[str, Any]) -> Chip:
    """A plan row as a Chip (integer columns arrive as floats when an Arrow batch mixes in tiles)."""
    chip = dict(row)
    for key in ("row", "col", "chip_px"):
        chip[key] = int(chip[key])
    return Chip.from_dict(chip)


def read_item(row: Mapping[str, Any], reader: ChipReader, max_empty_fraction: float) -> ItemRead:
    if row["kind"] == "tile":
        return read_tile(row["source"])
    return read_chip(chip_from_row(row), reader, max_empty_fraction)


def featurize_items(
    frame: pd.DataFrame,
    reader: ChipReader,
    featurizer: OnnxFeaturizer,
    batch_size: int,
    max_empty_fraction: float,
) -> pd.DataFrame:
    """Add ``status``, ``reason`` and ``features`` (zeros where not scored) to plan rows."""
    pixels: list[np.ndarray] = []
    positions: list[int] = []
    statuses: list[str] = []
    reasons: list[str | None] = []
    for position, row in enumerate(frame.to_dict("records")):
        chip_pixels, status, reason = read_item(row, reader, max_empty_fraction)
        statuses.append(status)
        reasons.append(reason)
        if chip_pixels is not None:
            pixels.append(chip_pixels)
            positions.append(position)
    features = np.zeros((len(frame), featurizer.spec.feature_dim), dtype=np.float32)
    if pixels:
        features[positions] = featurizer.features(pixels, batch_size=batch_size)
    out = frame.copy()
    out["status"] = statuses
    out["reason"] = reasons
    out["features"] = list(features)
    return out


def featurize_items_spark(
    items: DataFrame,
    onnx_broadcast: Broadcast,
    spec: FeaturizerSpec,
    *,
    batch_size: int,
    threads: int,
    max_empty_fraction: float,
    bands: Sequence[int],
) -> DataFrame:
    """Plan rows -> plan rows + ``status``, ``reason``, ``features``; one ChipReader per task."""
    spec_dict = spec.to_dict()
    band_list = list(bands)

    def infer(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        featurizer = cached_featurizer(
            lambda: onnx_broadcast.value, FeaturizerSpec.from_dict(spec_dict), threads
        )
        with ChipReader(bands=band_list) as reader:
            for frame in frames:
                yield featurize_items(frame, reader, featurizer, batch_size, max_empty_fraction)

    return items.mapInPandas(infer, FEATURES_SCHEMA)


def entropy(probabilities: Column) -> Column:
    """Shannon entropy (nats) of a probability array: 0 = certain, ln(classes) = uniform."""
    total = F.aggregate(
        probabilities,
        F.lit(0.0).cast("double"),
        lambda acc, p: acc + F.when(p > 0, p * F.log(p)).otherwise(F.lit(0.0)),
    )
    return -total


def classify(
    featurized: DataFrame,
    model: PipelineModel,
    classes: Sequence[str],
    *,
    model_name: str,
    featurizer_name: str,
) -> DataFrame:
    """Apply the classifier to featurized rows; prediction columns are null unless ``scored``."""
    predicted = model.transform(with_feature_vector(featurized))
    scored = F.col("status") == SCORED
    probabilities = vector_to_array("probability", "float32")
    return predicted.select(
        *(column for column in PLAN_COLUMNS if column != "seq"),
        "status",
        "reason",
        F.when(scored, F.col("predicted_label")).alias("predicted_label"),
        F.when(scored, F.col("prediction_index").cast("int")).alias("class_index"),
        F.when(scored, F.array_max(probabilities)).alias("confidence"),
        F.when(scored, probabilities).alias("probabilities"),
        F.array(*(F.lit(name) for name in classes)).alias("classes"),
        F.when(scored, entropy(probabilities)).alias("entropy"),
        F.lit(model_name).alias("model"),
        F.lit(featurizer_name).alias("featurizer"),
    )
