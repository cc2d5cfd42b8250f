"""Reference labels drawn over the user's rasters as a training source.

1. :func:`cut_reference_chips` - read the labels, plan the reference rasters on the scoring chip
   grid (same chip size, resolution, bands and radiometry as ``score``, so a labelled chip is
   exactly a scored chip), label the chips the polygons cover / the points fall in, split them by
   spatial blocks. Labels outside every raster or contradicting each other are rejected.
2. :func:`featurize_reference_chips` - read and featurize the chips in Spark through the scoring
   inference core; training chips also enter as their 8 flips/rotations. Chips found empty
   (nodata, black) when read are rejected too.
3. :func:`combine_features` - tile features and reference features in one ``features`` table,
   with the ``source`` of every row and a ``weight`` that keeps a few hundred reference chips
   from drowning among tens of thousands of tiles.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from aerial_kedro.chip_rows import SCORED
from aerial_kedro.chips.inference import featurize_items_spark, plan_frame
from aerial_kedro.chips.planning import plan_source, task_sizes
from aerial_kedro.chips.settings import ScoringSettings
from aerial_kedro.class_schemes import map_label
from aerial_kedro.featurizers.spec import FeaturizerSpec
from aerial_kedro.geo.label_chips import REJECTED_COLUMNS, label_planned_chips
from aerial_kedro.geo.label_files import read_reference_labels
from aerial_kedro.geo.radiometry import Radiometry
from aerial_kedro.pipelines.reference.settings import ReferenceSettings
from aerial_kedro.pipelines.reference.split import spatial_block_split
from aerial_kedro.spark_inference import task_slots
from aerial_kedro.tile_index import index_scheme

logger = logging.getLogger(__name__)

CHIP_COLUMNS = ["chip_id", "label", "source_label", "split", "cover", "label_ids"]
FEATURES_SCHEMA = (
    "tile_id string, label string, split string, features array<float>, featurizer string"
)


def _no_chips() -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    return pd.DataFrame(columns=CHIP_COLUMNS), pd.DataFrame(columns=list(REJECTED_COLUMNS)), {}


def cut_reference_chips(
    reference_labels: str | None,
    reference_rasters: str | None,
    reference_class_field: str,
    min_cover: float,
    class_scheme: str | dict[str, Any],
    tile_index: DataFrame,
    reference: dict[str, Any],
    scoring: dict[str, Any],
    seed: int,
    reference_layer: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """``(reference_chips, rejected_labels, radiometry)``: plan rows of the labelled chips with
    label and split, and the pixel conversion the reference rasters are read with.

    Labels are mapped through ``class_scheme`` over the class folders of ``tile_index``, as the
    tiles were (the default ``folders``: the labels must be folder names).
    """
    settings = ReferenceSettings.from_params(
        reference_labels,
        reference_rasters,
        reference_class_field,
        min_cover,
        reference,
        reference_layer,
    )
    if not settings.labels:
        logger.info("No reference_labels: training on tile folders only")
        return _no_chips()
    mapping = index_scheme(class_scheme, tile_index)
    labels = read_reference_labels(settings.labels, settings.class_field, layer=settings.layer)
    labels["source_label"] = labels["label"]
    labels["label"] = [map_label(v, mapping, what="reference class") for v in labels["label"]]
    scoring_settings = ScoringSettings.from_params(settings.rasters, scoring)
    plan_settings = scoring_settings.plan
    plan, problems, radiometry = plan_source(scoring_settings.score_source, plan_settings)
    for problem in problems:
        logger.warning("Reference raster %s rejected: %s", problem["path"], problem["reason"])
    planned = plan[plan["kind"] == "chip"]
    inside, _, rejects = label_planned_chips(
        labels,
        planned,
        plan_settings.tiled_grid,
        settings.min_cover,
        max_chips=plan_settings.max_chips,
        source=f"reference labels '{settings.labels}'",
    )
    source_labels = labels.set_index("label_id")["source_label"]
    rejects["label"] = rejects["label_id"].map(source_labels)  # the label as the user wrote it
    table = planned.merge(inside[["chip_id", "label", "cover", "label_ids"]], on="chip_id")
    table["source_label"] = [
        ", ".join(sorted({str(source_labels.get(i, "")) for i in ids}))
        for ids in table["label_ids"]
    ]
    table["split"] = spatial_block_split(
        table, settings.test_fraction, settings.block_chips, seed
    ).to_numpy()
    _log_reference(table, rejects)
    return (
        table.reset_index(drop=True),
        rejects[list(REJECTED_COLUMNS)].reset_index(drop=True),
        radiometry.to_dict() if radiometry is not None else {},
    )


def _log_reference(table: pd.DataFrame, rejects: pd.DataFrame) -> None:
    counts = table.groupby(["label", "split"]).size().unstack(fill_value=0)
    logger.info(
        "Reference chips: %d labelled (%d rejected labels) in %d classes",
        len(table), len(rejects), counts.shape[0],
    )  # fmt: skip
    for label, row in counts.iterrows():
        logger.info("  %-22s train %5d  test %5d", label, row.get("train", 0), row.get("test", 0))
    for _, reject in rejects.head(20).iterrows():
        logger.warning(
            "Rejected label %s (%s): %s", reject["label_id"], reject["label"], reject["reason"]
        )


def featurize_reference_chips(
    reference_chips: pd.DataFrame,
    rejected_labels: pd.DataFrame,
    radiometry: dict[str, Any],
    featurizer_onnx: bytes,
    featurizer_spec: dict[str, Any],
    scoring: dict[str, Any],
    reference: dict[str, Any],
    reference_rasters: str | None,
) -> tuple[DataFrame, pd.DataFrame]:
    """Features of the reference chips (training chips augmented 8x) and the final rejected labels."""
    spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
    if reference_chips.empty:
        return spark.createDataFrame([], FEATURES_SCHEMA), rejected_labels
    settings = ScoringSettings.from_params(reference_rasters, scoring)
    spec = FeaturizerSpec.from_dict(featurizer_spec)
    slots, cpus_per_task = task_slots(spark.conf.get, spark.sparkContext.defaultParallelism)
    onnx_broadcast = spark.sparkContext.broadcast(featurizer_onnx)
    conversion = Radiometry.from_dict(radiometry) if radiometry else None
    parts = []
    for split in ("train", "test"):
        rows = reference_chips[reference_chips["split"] == split]
        if rows.empty:
            continue
        plan = rows.assign(seq=range(len(rows)), chunk=0)
        items = plan_frame(spark, plan, task_sizes(len(plan), slots, 2))
        augment = bool(reference["augment"]) and split == "train"
        reading = settings.reading(cpus_per_task, conversion, augment)
        featurized = featurize_items_spark(items, onnx_broadcast, spec, reading)
        labels = spark.createDataFrame(
            rows[["chip_id", "label", "source_label", "split"]].astype(str)
        )
        parts.append(featurized.join(F.broadcast(labels), on="chip_id"))
    results = parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])
    results = results.persist()
    unusable: pd.DataFrame = (
        results.where((F.col("status") != SCORED) & (F.col("augment") == 0))
        .select("chip_id", "label", "status", "reason")
        .toPandas()
    )
    features = results.where(F.col("status") == SCORED).select(
        F.when(F.col("augment") == 0, F.col("chip_id"))
        .otherwise(F.concat_ws("#", "chip_id", F.col("augment").cast("string")))
        .alias("tile_id"),
        "label",
        "split",
        "features",
        F.lit(spec.name).alias("featurizer"),
    )
    if not unusable.empty:
        label_of = reference_chips.set_index("chip_id")["label_ids"]
        extra = pd.DataFrame(
            {
                "label_id": [list(label_of[c]) for c in unusable["chip_id"]],
                "label": unusable["label"],
                "chip_id": unusable["chip_id"],
                "reason": [
                    f"chip {s}: {r}"
                    for s, r in zip(unusable["status"], unusable["reason"], strict=True)
                ],
            }
        ).explode("label_id")
        for _, row in extra.head(20).iterrows():
            logger.warning(
                "Rejected label %s on %s: %s", row["label_id"], row["chip_id"], row["reason"]
            )
        rejected_labels = pd.concat(
            [rejected_labels, extra[list(REJECTED_COLUMNS)]], ignore_index=True
        )
    return features, rejected_labels


def combine_features(
    tile_features: DataFrame, reference_features: DataFrame, reference: dict[str, Any]
) -> DataFrame:
    """One feature table: every row with its ``source`` (tiles / reference) and training ``weight``.

    ``reference.weight = balanced`` gives all reference training rows together the total
    weight of the training tiles (each tile weighs 1): a few hundred chips of the user's own
    scene then count as much as the 27,000 tiles of another season - the probe in DESIGN.md saw
    forest recall on unseen chips go from 0 to ~2/3 only with such up-weighting.
    ``reference.class_balance`` then shares that weight equally between the reference classes
    (:func:`class_balanced_weights`): labels drawn over a farmland scene are mostly cropland, and
    unweighted, ten forest chips beside 130 cropland ones are outvoted.
    """
    tiles = tile_features.withColumn("source", F.lit("tiles")).withColumn("weight", F.lit(1.0))
    if reference_features.isEmpty():
        return tiles
    weight = reference_weight(tile_features, reference_features, reference["weight"])
    logger.info("Reference rows weigh %.3f each (tiles 1.0)", weight)
    chips = reference_features.withColumn("source", F.lit("reference")).withColumn(
        "weight", F.lit(float(weight))
    )
    if reference.get("class_balance", False):
        chips = class_balanced_weights(chips)
    return tiles.unionByName(chips)


def class_balanced_weights(chips: DataFrame) -> DataFrame:
    """``weight`` x ``n / (k * n_class)`` on training rows (``n`` training rows in ``k`` classes):
    every class's rows together weigh the same, and all of them together what they did before."""
    counts = {
        row["label"]: row["count"]
        for row in chips.where(F.col("split") == "train").groupBy("label").count().collect()
    }
    if not counts:
        return chips
    total, classes = sum(counts.values()), len(counts)
    factors = {label: total / (classes * count) for label, count in counts.items()}
    logger.info(
        "Reference classes balanced: %s",
        ", ".join(f"{label} x{factor:.2f}" for label, factor in sorted(factors.items())),
    )
    factor = F.create_map(*(F.lit(x) for item in factors.items() for x in item))[F.col("label")]
    return chips.withColumn(
        "weight",
        F.when(F.col("split") == "train", F.col("weight") * factor).otherwise(F.col("weight")),
    )


def reference_weight(
    tile_features: DataFrame, reference_features: DataFrame, setting: Any
) -> float:
    """The weight of one reference row: a number, or ``balanced`` (equal total training weight)."""
    if setting != "balanced":
        return float(setting)
    n_tiles = tile_features.where(F.col("split") == "train").count()
    n_chips = reference_features.where(F.col("split") == "train").count()
    if n_tiles == 0 or n_chips == 0:
        return 1.0
    return max(1.0, n_tiles / n_chips)


def training_chip_ids(reference_chips: pd.DataFrame) -> pd.DataFrame:
    """The chip ids the model trained on: ``assess`` leaves them out of the reference sample."""
    if reference_chips.empty:
        return pd.DataFrame({"chip_id": pd.Series([], dtype=str)})
    return reference_chips.loc[reference_chips["split"] == "train", ["chip_id"]].reset_index(
        drop=True
    )
