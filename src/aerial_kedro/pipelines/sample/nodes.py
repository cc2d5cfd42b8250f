"""`sample` nodes: the design's sizes from the map's strata, then the chips, drawn in Spark;
beside them the chips worth labelling for training.

Chips are drawn within each stratum by a seeded hash of their id (xxhash64 of seed and chip id;
the ``n_h`` smallest): a simple random sample without replacement that is the same for the same
map and seed whatever the partitioning, and only the drawn chips reach the driver.

Training candidates (:func:`pick_training_candidates`): the ``candidate_pool`` chips the map is
least sure of reach the driver with their class probabilities and colour cells (~1 KB a chip,
5 MB for 5,000), as do those of the chips the model trained on;
:func:`aerial_kedro.active_learning.ranked_batch` picks among them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from aerial_kedro.active_learning import (
    candidate_blocks,
    feature_space,
    ranked_batch,
    uncertainty,
)
from aerial_kedro.assessment.sampling import SampleDesign, design_sample
from aerial_kedro.chip_rows import DESCRIPTOR_COLUMNS, SCORED
from aerial_kedro.chips.records import ScoringRun
from aerial_kedro.geo.geojson import chips_to_geojson
from aerial_kedro.pipelines.sample.settings import SampleSettings

logger = logging.getLogger(__name__)

SAMPLE_COLUMNS = ("chip_id", "predicted_label", "crs", "minx", "miny", "maxx", "maxy")


def validate_sample_params(sample: Mapping[str, Any] | None) -> SampleSettings:
    return SampleSettings.from_params(sample)


def mapped_chips(predictions: DataFrame, scoring_run: ScoringRun) -> DataFrame:
    """The run's scored chips: the population the sample is drawn from."""
    if scoring_run.is_tiles:
        raise ValueError(
            f"score_source '{scoring_run.source}' is plain tiles without georeference; "
            "a sample design needs a scored raster source"
        )
    run = (F.col("run_id") == scoring_run.run_id) & (F.col("status") == SCORED)
    return predictions.where(run).select(*SAMPLE_COLUMNS)


def plan_sample(chips: DataFrame, settings: SampleSettings) -> SampleDesign:
    """Sample sizes per mapped class (Olofsson et al. 2014 eq. 13 and a minimum per class)."""
    strata = {
        str(row["predicted_label"]): int(row["count"])
        for row in chips.groupBy("predicted_label").count().collect()
    }
    if not strata:
        raise ValueError("the scoring run has no scored chip to sample")
    classes = sorted(strata)
    design = design_sample(
        {name: strata[name] for name in classes},
        settings.expected_accuracy(classes),
        settings.target_se,
        settings.min_per_stratum,
        settings.seed,
    )
    logger.info(
        "Sample design: %d chips to label (eq. 13 gives %d for a standard error of %.3f; "
        "at least %d per class): %s",
        design.n_total, design.n_formula, design.target_se, design.min_per_stratum,
        ", ".join(f"{name} {n} of {design.strata[name]}" for name, n in design.n_per_stratum.items()),
    )  # fmt: skip
    if design.n_total == sum(design.strata.values()):
        logger.warning(
            "The map has fewer chips (%d) than the design asks for: label every chip (a census, "
            "no sampling error) or raise sample.target_se", design.n_total,
        )  # fmt: skip
    return design


def draw_sample(chips: DataFrame, design: SampleDesign) -> pd.DataFrame:
    """The chips to label: the ``n_h`` chips of each stratum with the smallest seeded hash."""
    sizes = chips.sparkSession.createDataFrame(
        pd.DataFrame(
            {
                "predicted_label": list(design.n_per_stratum),
                "n_h": list(design.n_per_stratum.values()),
            }
        ),  # fmt: skip
        "predicted_label string, n_h int",
    )
    order = Window.partitionBy("predicted_label").orderBy("draw_key", "chip_id")
    drawn: pd.DataFrame = (
        chips.withColumn("draw_key", F.xxhash64(F.lit(design.seed), F.col("chip_id")))
        .withColumn("draw_rank", F.row_number().over(order))
        .join(F.broadcast(sizes), "predicted_label")
        .where(F.col("draw_rank") <= F.col("n_h"))
        .select(*SAMPLE_COLUMNS)
        .toPandas()
    )
    return drawn.sort_values(["predicted_label", "chip_id"], ignore_index=True)


def sample_products(
    drawn: pd.DataFrame, design: SampleDesign, scoring_run: ScoringRun
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(GeoJSON of the chips to label, the design as JSON)``. Each feature's ``class`` is empty
    for the labeller; ``stratum`` is the mapped class and ``inclusion_probability`` n_h / N_h.
    The JSON lists the drawn chip ids per stratum (``chip_ids``): what `assess` checks labels
    against."""
    collection = chips_to_geojson(drawn.to_dict("records"), with_probabilities=False)
    for feature, row in zip(collection["features"], drawn.itertuples(), strict=True):
        stratum = str(row.predicted_label)
        feature["properties"] = {
            "chip_id": row.chip_id,
            "stratum": stratum,
            "inclusion_probability": design.inclusion_probability(stratum),
            "class": None,
        }
    summary = {
        **design.to_dict(),
        # The drawn chips, so `assess` can tell non-response from chips the design never drew.
        "chip_ids": {
            stratum: drawn.loc[drawn["predicted_label"] == stratum, "chip_id"].astype(str).tolist()
            for stratum in design.n_per_stratum
        },
        "run_id": scoring_run.run_id,
        "score_source": scoring_run.source,
        "strata_are": "mapped classes (chips)",
        "how_to_label": "set each feature's `class`, then "
        "kedro run --pipelines=assess --params=reference_labels=<this file>,reference_class_field=class",
    }
    return collection, summary


CANDIDATE_COLUMNS = (*SAMPLE_COLUMNS, "confidence", "rank", "distance_to_labels")


def pick_training_candidates(
    predictions: DataFrame,
    scoring_run: ScoringRun,
    drawn: pd.DataFrame,
    training_chips: pd.DataFrame | None,
    settings: SampleSettings,
) -> pd.DataFrame:
    """The ``training_candidates`` chips worth labelling for training, best first (module doc):
    among the ``candidate_pool`` scored chips of the run with the lowest confidence, neither
    trained on nor drawn for assessment."""
    colour = DESCRIPTOR_COLUMNS[0]
    if not settings.training_candidates:
        return pd.DataFrame(columns=list(CANDIDATE_COLUMNS))
    if colour not in predictions.columns:
        raise ValueError(
            "the map's predictions have no colour descriptors (scored before they existed): "
            "score it again with --params=scoring.restart=true"
        )
    spark = predictions.sparkSession
    chips = predictions.where(
        (F.col("run_id") == scoring_run.run_id) & (F.col("status") == SCORED)
    ).select(*SAMPLE_COLUMNS, "confidence", "probabilities", colour)
    trained = spark.createDataFrame(
        pd.DataFrame({"chip_id": _ids(training_chips)}), "chip_id string"
    )
    taken = spark.createDataFrame(
        pd.DataFrame({"chip_id": _ids(training_chips) + _ids(drawn)}), "chip_id string"
    )
    labelled: pd.DataFrame = (
        chips.join(F.broadcast(trained), "chip_id").select("probabilities", colour).toPandas()
    )
    pool: pd.DataFrame = (
        chips.join(F.broadcast(taken), "chip_id", "left_anti")
        .orderBy("confidence", "chip_id")
        .limit(settings.candidate_pool)
        .toPandas()
    )
    if pool.empty:
        logger.warning(
            "No training candidates: every scored chip was trained on or is in the assessment "
            "design (%d chips; a census when the map is small): raise sample.target_se to leave "
            "chips for training", len(_ids(drawn)),
        )  # fmt: skip
        return pd.DataFrame(columns=list(CANDIDATE_COLUMNS))
    pool_blocks = candidate_blocks(pool["probabilities"], pool[colour])
    labelled_blocks = (
        candidate_blocks(labelled["probabilities"], labelled[colour])
        if len(labelled)
        else [np.empty((0, block.shape[1])) for block in pool_blocks]
    )
    pool_features, labelled_features = feature_space(pool_blocks, labelled_blocks)
    picked, distance = ranked_batch(
        pool_features,
        uncertainty(pool_blocks[0]),
        labelled_features,
        settings.training_candidates,
    )
    out = pool.iloc[picked].drop(columns=["probabilities", colour]).reset_index(drop=True)
    out["rank"] = range(1, len(out) + 1)
    out["distance_to_labels"] = [None if np.isinf(d) else round(float(d), 3) for d in distance]
    logger.info(
        "Training candidates: %d chips to label among the %d the map is least sure of "
        "(%d labelled chips of the model on this map)",
        len(out), len(pool), len(labelled),
    )  # fmt: skip
    return out


def _ids(frame: pd.DataFrame | None) -> list[str]:
    return [] if frame is None or frame.empty else frame["chip_id"].astype(str).tolist()


def candidate_products(candidates: pd.DataFrame) -> dict[str, Any]:
    """The candidates as lon/lat chip polygons: ``chip_id``, ``rank``, ``mapped_class``,
    ``confidence``, ``distance_to_labels`` and an empty ``class`` for the labeller."""
    collection = chips_to_geojson(candidates.to_dict("records"), with_probabilities=False)
    for feature, row in zip(collection["features"], candidates.itertuples(), strict=True):
        feature["properties"] = {
            "chip_id": row.chip_id,
            "rank": int(row.rank),
            "mapped_class": str(row.predicted_label),
            "confidence": round(float(row.confidence), 4),
            "distance_to_labels": row.distance_to_labels,
            "class": None,
        }
    return collection
