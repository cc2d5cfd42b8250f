"""Scoring inside Spark tasks: each task reads only its own chips (or tiles), featurizes, classifies.

The driver hands Spark plan rows (metadata: chip bounds and source paths, see
:mod:`.planning`), one contiguous slice of the plan per task. In the task, a
:class:`~aerial_kedro.geo.chip_reader.ChipReader` opened once per partition reads each chip's
window (mosaicking and resampling as needed), near-empty chips are marked ``empty`` and not
featurized, the rest are converted to the training tiles' 8-bit look (the run's radiometry,
:mod:`aerial_kedro.geo.radiometry`), their ``cloud_fraction`` measured, and they go through the
shared inference core (:func:`aerial_kedro.spark_inference.infer_items`: read, resized and
featurized ``batch_size`` items at a time, one onnxruntime session per Python worker), as
featurization's tiles do. The classifier is the Spark ML PipelineModel: when it is a linear
map plus softmax (logistic regression, :mod:`aerial_kedro.models.linear_head`) its coefficients
are applied in the same Python worker right after the network, so only class probabilities
leave it (:func:`classify_items_spark`); any other model is applied in the JVM to the
featurized rows (:func:`classify`). Pixels and features never reach the driver.

Every input row gives exactly one output row, with ``status`` (the core's vocabulary,
:data:`aerial_kedro.spark_inference.ITEM_STATUSES`):

* ``scored`` - class, confidence, probabilities and entropy are set;
* ``empty`` - more than ``max_empty_fraction`` of the chip is nodata or black (not classified);
* ``unreadable`` - the chip's window or the tile could not be read; ``reason`` says why.

With ``augment=True`` (training-set augmentation) a readable item gives 8 rows instead, its
dihedral transforms (``augment`` 0-3: rotated 0/90/180/270 degrees, 4-7: mirrored left-right,
then rotated); otherwise ``augment`` is 0, so both share one schema.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark import Broadcast
from pyspark.ml import PipelineModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from aerial_kedro.chip_rows import (
    DESCRIPTOR_COLUMNS,
    EMPTY,
    PLAN_COLUMNS,
    PLAN_SCHEMA,
    SCORED,
    UNREADABLE,
)
from aerial_kedro.chips.descriptors import colour_cells, texture_features, texture_slice
from aerial_kedro.chips.planning import plan_records
from aerial_kedro.chips.records import ChipReading
from aerial_kedro.featurizers.runner import OnnxFeaturizer
from aerial_kedro.featurizers.spec import FeaturizerSpec
from aerial_kedro.geo.chip_planning import Chip
from aerial_kedro.geo.chip_reader import ChipReader, is_empty_chip
from aerial_kedro.geo.radiometry import (
    AUTO,
    Radiometry,
    cloud_fraction,
    cloud_mask,
    cloud_share,
    resolve_radiometry,
    stretch,
    stretched_to_uint8,
)
from aerial_kedro.geo.raster_inspection import RasterError
from aerial_kedro.models.features import with_feature_vector
from aerial_kedro.models.linear_head import LinearHead
from aerial_kedro.spark_inference import (
    ItemRead,
    arrow_batch,
    arrow_schema,
    cached_featurizer,
    infer_items,
    read_tile_bytes,
)

FEATURES_SCHEMA = (
    f"{PLAN_SCHEMA}, status string, reason string, augment int, cloud_fraction float, "
    "features array<float>, colour_cells binary, texture binary"
)
# What leaves the worker when it classifies (apply_head): class probabilities, not features.
HEAD_SCHEMA = (
    f"{PLAN_SCHEMA}, status string, reason string, augment int, cloud_fraction float, "
    "probabilities array<float>, class_index int, predicted_label string, "
    "colour_cells binary, texture binary"
)
N_DIHEDRAL = 8


def read_tile_item(uri: str) -> ItemRead:
    """``(pixels, cloud fraction, status, reason)`` of a plain image file (fsspec URL or path)."""
    try:
        with fsspec.open(uri, "rb") as stream:
            content = stream.read()
    except OSError as error:
        return None, None, UNREADABLE, f"cannot be read ({error})"
    pixels, _, status, reason = read_tile_bytes(content)
    if pixels is None:
        return None, None, status, reason
    return pixels, cloud_fraction(pixels), status, reason


def read_chip_with_clouds(
    chip: Chip,
    reader: ChipReader,
    max_empty_fraction: float,
    radiometry: Radiometry | str | None = None,
) -> tuple[ItemRead, np.ndarray | None]:
    """A chip as a scoring item, judged: ``(8-bit pixels, cloud fraction, status, reason)``,
    and the per-pixel mask of its valid cloud-like pixels the fraction was measured on.

    Unlike the raw read (:meth:`aerial_kedro.geo.chip_reader.ChipReader.read`: source pixels in
    the source dtype), a chip nobody can read is ``unreadable`` rather than an error, and a
    readable one is ``empty`` or converted to the 8-bit look of the training tiles. Pixels
    outside every source (or nodata, or 0 in every band) count as empty. Emptiness is judged
    on the source values, before the conversion (a dark pond clipped to 0 by a display range
    is not nodata); clouds on the converted but unclipped values
    (:func:`aerial_kedro.geo.radiometry.stretch`), among the valid pixels.
    """
    try:
        pixels, valid = reader.read_with_mask(chip)
    except (RasterError, ValueError) as error:
        return (None, None, UNREADABLE, str(error)), None
    if is_empty_chip(np.where(valid[..., None], pixels, 0), max_empty_fraction=max_empty_fraction):
        return (None, None, EMPTY, f"over {max_empty_fraction:.0%} nodata or black"), None
    if radiometry == AUTO:  # resolved per chip, by the same rule as planning
        radiometry = resolve_radiometry(AUTO, str(pixels.dtype))
    if isinstance(radiometry, str):
        raise TypeError(f"radiometry '{radiometry}': expected a Radiometry, None or '{AUTO}'")
    if radiometry is None and pixels.dtype != np.uint8:
        return (None, None, UNREADABLE, f"{pixels.dtype} pixels and no radiometric conversion"), None
    if radiometry is None or (radiometry.is_identity and pixels.dtype == np.uint8):
        clouds = cloud_mask(pixels) & valid
        return (pixels, cloud_share(clouds, valid), SCORED, None), clouds
    values = stretch(pixels, radiometry)
    # A conversion matched to another date judges clouds by the source's own conversion: the
    # per-band gains would tint white clouds and hide them (geo.relative_radiometry).
    cloud_values = values if radiometry.base is None else stretch(pixels, radiometry.base)
    clouds = cloud_mask(cloud_values) & valid
    return (stretched_to_uint8(values), cloud_share(clouds, valid), SCORED, None), clouds


def read_chip_item(
    chip: Chip,
    reader: ChipReader,
    max_empty_fraction: float,
    radiometry: Radiometry | str | None = None,
) -> ItemRead:
    """:func:`read_chip_with_clouds` without the cloud mask."""
    return read_chip_with_clouds(chip, reader, max_empty_fraction, radiometry)[0]


def chip_from_row(row: Mapping[str, Any]) -> Chip:
    """A plan row as a Chip (integer columns arrive as floats when an Arrow batch mixes in tiles)."""
    chip = dict(row)
    for key in ("row", "col", "chip_px"):
        chip[key] = int(chip[key])
    return Chip.from_dict(chip)


def read_item(
    row: Mapping[str, Any],
    reader: ChipReader,
    max_empty_fraction: float,
    radiometry: Radiometry | str | None = None,
) -> tuple[ItemRead, np.ndarray | None]:
    """A plan row read: the item and, for a chip, its cloud mask (None for a plain tile)."""
    if row["kind"] == "tile":
        return read_tile_item(row["source"]), None
    return read_chip_with_clouds(chip_from_row(row), reader, max_empty_fraction, radiometry)


def dihedral(pixels: np.ndarray, index: int) -> np.ndarray:
    """Transform ``index`` (0-7) of the square's symmetry group on an HWC chip: 0-3 rotate by
    0/90/180/270 degrees counter-clockwise, 4-7 mirror left-right and then rotate the same."""
    if not 0 <= index < N_DIHEDRAL:
        raise ValueError(f"dihedral index {index} is outside 0-7")
    out = pixels[:, ::-1] if index >= 4 else pixels
    return np.ascontiguousarray(np.rot90(out, index % 4, axes=(0, 1)))


def item_reads(
    frame: pd.DataFrame,
    reader: ChipReader,
    max_empty_fraction: float,
    radiometry: Radiometry | str | None = None,
    augment: bool = False,
) -> Iterator[tuple[int, int, ItemRead, np.ndarray | None]]:
    """``(input row, augment index, read, cloud mask)`` of every output row, lazily: one item is
    read at a time, so only the inference core's bounded batch of pixels is ever held. Augmented
    rows (training chips) carry no cloud mask: they keep no change descriptors."""
    for position, row in enumerate(frame.to_dict("records")):
        read, clouds = read_item(row, reader, max_empty_fraction, radiometry)
        pixels = read[0]
        if not augment or pixels is None:
            yield position, 0, read, clouds
            continue
        for index in range(N_DIHEDRAL):
            yield position, index, (dihedral(pixels, index) if index else pixels, *read[1:]), None


def featurize_items(
    frame: pd.DataFrame,
    reader: ChipReader,
    featurizer: OnnxFeaturizer,
    batch_size: int,
    max_empty_fraction: float,
    radiometry: Radiometry | str | None = None,
    augment: bool = False,
) -> pd.DataFrame:
    """Add ``status``, ``reason``, ``augment``, ``cloud_fraction``, ``features`` (zeros where
    not scored) and the change descriptors ``colour_cells`` and ``texture`` (null where not
    scored, and with ``augment``; :mod:`aerial_kedro.chips.descriptors`) to plan rows; one
    row per item, or 8 per readable item with ``augment``.

    Reading, resizing and inference go through the shared core
    (:func:`aerial_kedro.spark_inference.infer_items`), ``batch_size`` items at a time."""
    sources: list[int] = []  # input row of each output row
    augments: list[int] = []
    colours: list[bytes | None] = []
    reads = item_reads(frame, reader, max_empty_fraction, radiometry, augment)

    def tracked() -> Iterator[ItemRead]:
        for position, index, read, clouds in reads:
            sources.append(position)
            augments.append(index)
            pixels = read[0]
            if pixels is None or augment:  # training augmentations need none
                colours.append(None)
            else:
                colours.append(colour_cells(pixels, clouds))
            yield read

    results = list(infer_items(tracked(), featurizer, batch_size))
    zeros = np.zeros(featurizer.spec.feature_dim, dtype=np.float32)
    out = frame.iloc[sources].reset_index(drop=True)
    out["status"] = [status for _, _, status, _ in results]
    out["reason"] = [reason for _, _, _, reason in results]
    out["augment"] = np.asarray(augments, dtype=np.int32)
    out["cloud_fraction"] = pd.array([cloud for _, cloud, _, _ in results], dtype="Float32")
    out["features"] = [zeros if vector is None else vector for vector, _, _, _ in results]
    part = texture_slice(featurizer.spec.name, featurizer.spec.extra)
    scored = [status == SCORED for _, _, status, _ in results]
    out["colour_cells"] = [c if ok else None for c, ok in zip(colours, scored, strict=True)]
    out["texture"] = [
        # A scored item always has its feature vector.
        texture_features(vector, part) if ok and not augment and vector is not None else None
        for (vector, _, _, _), ok in zip(results, scored, strict=True)
    ]
    return out


def plan_frame(spark: SparkSession, plan: pd.DataFrame, task_sizes: Sequence[int]) -> DataFrame:
    """Plan rows as a Spark DataFrame of :data:`PLAN_SCHEMA`, one partition (task) per entry of
    ``task_sizes`` (:func:`aerial_kedro.chips.planning.task_sizes`), each a contiguous slice of
    the plan (a task's chips lie side by side: its reader opens few files)."""
    records = plan_records(plan)
    if sum(task_sizes) != len(records):
        raise ValueError(f"task sizes add up to {sum(task_sizes)}, not to the {len(records)} plan rows")
    ends = np.cumsum(task_sizes).tolist()
    slices = [records[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]
    # One list per partition: parallelize() itself would cut the plan into equal slices.
    tasks = spark.sparkContext.parallelize(slices, len(slices)).flatMap(lambda rows: rows)
    return spark.createDataFrame(tasks, PLAN_SCHEMA)


def featurize_items_spark(
    items: DataFrame, onnx_broadcast: Broadcast, spec: FeaturizerSpec, reading: ChipReading
) -> DataFrame:
    """Plan rows -> plan rows + ``status``, ``reason``, ``augment``, ``cloud_fraction``,
    ``features``; one ChipReader per task, reading as ``reading`` says.

    ``items`` may be any rows of a plan (e.g. only the labelled chips of
    :func:`aerial_kedro.chips.planning.plan_source`).
    """
    return _map_items(items, onnx_broadcast, spec, None, FEATURES_SCHEMA, reading)


def classify_items_spark(
    items: DataFrame,
    onnx_broadcast: Broadcast,
    head_broadcast: Broadcast,
    spec: FeaturizerSpec,
    reading: ChipReading,
    *,
    classes: Sequence[str],
    model_name: str,
    featurizer_name: str,
) -> DataFrame:
    """Plan rows -> prediction rows, classified inside the Python worker: the rows of
    :func:`classify`, but the features never leave the worker.

    ``head_broadcast`` holds the model's :class:`~aerial_kedro.models.linear_head.LinearHead`
    (:func:`aerial_kedro.models.linear_head.head_of`); other arguments as
    :func:`featurize_items_spark` and :func:`classify`. Training augmentation does not apply.
    """
    plain = replace(reading, augment=False)
    classified = _map_items(items, onnx_broadcast, spec, head_broadcast, HEAD_SCHEMA, plain)
    return prediction_rows(
        classified, classes, model_name=model_name, featurizer_name=featurizer_name
    )


def apply_head(featurized: pd.DataFrame, head: LinearHead) -> pd.DataFrame:
    """:func:`featurize_items`' rows with ``probabilities`` (float32, as the JVM path keeps
    them), ``class_index`` and ``predicted_label`` instead of ``features``; null unless scored."""
    n = len(featurized)
    scored = np.flatnonzero((featurized["status"] == SCORED).to_numpy())
    probabilities: list[np.ndarray | None] = [None] * n
    class_index = np.zeros(n, dtype=np.int32)
    labels: list[str | None] = [None] * n
    if len(scored):
        vectors = featurized["features"]
        computed = head.probabilities(np.stack([vectors.iat[row] for row in scored]))
        predicted = head.predictions(computed)
        as_float32 = computed.astype(np.float32)
        for k, row in enumerate(scored):
            probabilities[row] = as_float32[k]
            class_index[row] = predicted[k]
            labels[row] = head.labels[predicted[k]]
    out = featurized.drop(columns=["features"])
    out["probabilities"] = probabilities
    mask = np.ones(n, dtype=bool)
    mask[scored] = False
    out["class_index"] = pd.arrays.IntegerArray(class_index, mask)
    out["predicted_label"] = labels
    return out


def _map_items(
    items: DataFrame,
    onnx_broadcast: Broadcast,
    spec: FeaturizerSpec,
    head_broadcast: Broadcast | None,
    schema: str,
    reading: ChipReading,
) -> DataFrame:
    spec_dict = spec.to_dict()
    out_schema = arrow_schema(items.sparkSession, schema)

    def infer(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        featurizer = cached_featurizer(
            lambda: onnx_broadcast.value, FeaturizerSpec.from_dict(spec_dict), reading.threads
        )
        head = None if head_broadcast is None else head_broadcast.value
        with ChipReader(bands=list(reading.bands)) as reader:
            for batch in batches:
                featurized = featurize_items(
                    batch.to_pandas(), reader, featurizer, reading.batch_size,
                    reading.max_empty_fraction, reading.radiometry, reading.augment,
                )  # fmt: skip
                rows = featurized if head is None else apply_head(featurized, head)
                yield arrow_batch(rows, out_schema)

    return items.mapInArrow(infer, schema)


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
    """Apply the classifier to featurized rows in the JVM; prediction columns are null unless
    ``scored``."""
    predicted = model.transform(with_feature_vector(featurized))
    return prediction_rows(
        predicted.withColumn("probabilities", vector_to_array(F.col("probability"), "float32"))
        .withColumn("class_index", F.col("prediction_index").cast("int")),
        classes,
        model_name=model_name,
        featurizer_name=featurizer_name,
    )


def prediction_rows(
    classified: DataFrame, classes: Sequence[str], *, model_name: str, featurizer_name: str
) -> DataFrame:
    """The prediction rows of classified rows (``probabilities`` float32, ``class_index``,
    ``predicted_label``), whichever side classified them: confidence and entropy are derived
    here, by one expression for both."""
    scored = F.col("status") == SCORED
    probabilities = F.col("probabilities")
    return classified.select(
        *(column for column in PLAN_COLUMNS if column != "seq"),
        "status",
        "reason",
        "cloud_fraction",
        F.when(scored, F.col("predicted_label")).alias("predicted_label"),
        F.when(scored, F.col("class_index")).alias("class_index"),
        F.when(scored, F.array_max(probabilities)).alias("confidence"),
        F.when(scored, probabilities).alias("probabilities"),
        F.array(*(F.lit(name) for name in classes)).alias("classes"),
        F.when(scored, entropy(probabilities)).alias("entropy"),
        F.lit(model_name).alias("model"),
        F.lit(featurizer_name).alias("featurizer"),
        *(F.when(scored, F.col(c)).alias(c) for c in DESCRIPTOR_COLUMNS),
    )
