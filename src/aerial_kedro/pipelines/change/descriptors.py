"""The appearance comparison in Spark: descriptors stay on the executors, summaries reach the driver.

Two passes over the chips both dates scored (joined by chip id): the first sums each
partition's :class:`~aerial_kedro.change.appearance.SceneMoments` (a few KB per partition), the
second turns every chip's descriptors into its ``colour_change`` and ``texture_change`` with the
scene's standardisers. Only chip ids and those two numbers per chip are collected.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Mapping, Sequence
from functools import reduce
from operator import add
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from aerial_kedro.change.appearance import (
    AppearanceCriteria,
    SceneMoments,
    colour_change,
    decode_colour_cells,
    decode_texture,
    texture_change,
)
from aerial_kedro.chip_rows import DESCRIPTOR_COLUMNS, SCORED

APPEARANCE_COLUMNS = ("chip_id", "colour_change", "texture_change")


def _date_descriptors(predictions: DataFrame, run: Mapping[str, Any], date: str) -> DataFrame:
    missing = [c for c in DESCRIPTOR_COLUMNS if c not in predictions.columns]
    if missing:
        raise ValueError(
            f"the {date} date's predictions have no {', '.join(missing)} (scored before change "
            "descriptors existed): score it again with --params=scoring.restart=true"
        )
    colour, texture = DESCRIPTOR_COLUMNS
    return predictions.where(
        (F.col("run_id") == run["run_id"]) & (F.col("status") == SCORED)
    ).select(
        "chip_id",
        F.col(colour).alias(f"colour_{date}"),
        F.col(texture).alias(f"texture_{date}"),
    )


def _decoded(frame: pd.DataFrame) -> tuple[Any, Any, Any, Any, Any]:
    """``(colour before, colour after, texture before, texture after, cloudy cells)``; a cell is
    cloudy when cloud-like on either date."""
    colour_before, cloudy_before = decode_colour_cells(list(frame["colour_before"]))
    colour_after, cloudy_after = decode_colour_cells(list(frame["colour_after"]))
    return (
        colour_before,
        colour_after,
        decode_texture(list(frame["texture_before"])),
        decode_texture(list(frame["texture_after"])),
        cloudy_before | cloudy_after,
    )


def appearance_changes(
    before_predictions: DataFrame,
    before_run: Mapping[str, Any],
    after_predictions: DataFrame,
    after_run: Mapping[str, Any],
    compared: Sequence[str],
    criteria: AppearanceCriteria,
) -> pd.DataFrame:
    """``chip_id, colour_change, texture_change`` of the ``compared`` chips (both dates scored
    and clear): each date standardised over exactly these chips."""
    if len(compared) < 2:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in APPEARANCE_COLUMNS})
    spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
    ids = spark.createDataFrame(pd.DataFrame({"chip_id": list(compared)}))
    pairs = (
        _date_descriptors(before_predictions, before_run, "before")
        .join(_date_descriptors(after_predictions, after_run, "after"), on="chip_id")
        .join(F.broadcast(ids), on="chip_id")
        .where(F.col("colour_before").isNotNull() & F.col("colour_after").isNotNull())
    )

    def partial_moments(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in frames:
            if len(frame):
                yield pd.DataFrame({"moments": [pickle.dumps(SceneMoments.of(*_decoded(frame)))]})

    rows = pairs.mapInPandas(partial_moments, "moments binary").collect()
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in APPEARANCE_COLUMNS})
    moments = reduce(add, (pickle.loads(row["moments"]) for row in rows))
    quantile = criteria.colour_quantile

    def per_chip(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in frames:
            if not len(frame):
                continue
            cb, ca, tb, ta, cloudy = _decoded(frame)
            yield pd.DataFrame(
                {
                    "chip_id": frame["chip_id"],
                    "colour_change": colour_change(cb, ca, moments, quantile, cloudy),
                    "texture_change": texture_change(tb, ta, moments),
                }
            )

    schema = "chip_id string, colour_change double, texture_change double"
    return pairs.mapInPandas(per_chip, schema).toPandas()
