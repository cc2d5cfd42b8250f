"""The appearance comparison in Spark: descriptors stay on the executors, summaries reach the driver.

Three passes over the chips both dates scored (joined by chip id): the first sums each
partition's :class:`~aerial_kedro.change.appearance.SceneMoments` (a few KB per partition); the
second collects the colour cells of at most about ``reference_chips`` chips (all of them in a
smaller scene, else the chips whose CRC-32 of the id falls under the matching share: 2 KB per
chip, ~2 MB for 1,024) as the :class:`~aerial_kedro.change.appearance.CellReference` every
cell is judged against, broadcast (~7 MB); the third turns every chip's descriptors into its
``colour_change`` and ``texture_change``. Only chip ids and those two numbers per chip are
collected. The neighbour look-ups cost about 7-12 ms per chip on one core (1-2 minutes of
executor time per 10,000 chips).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Iterator, Sequence
from functools import reduce
from operator import add

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from aerial_kedro.change.appearance import (
    AppearanceCriteria,
    CellReference,
    SceneMoments,
    cloudy_cells,
    colour_change,
    conditional_colour_change,
    texture_change,
)
from aerial_kedro.chip_rows import DESCRIPTOR_COLUMNS, SCORED
from aerial_kedro.chips.descriptors import decode_colour_cells, decode_texture
from aerial_kedro.chips.records import ScoringRun

APPEARANCE_COLUMNS = ("chip_id", "colour_change", "texture_change")


def _date_descriptors(predictions: DataFrame, run: ScoringRun, date: str) -> DataFrame:
    missing = [c for c in DESCRIPTOR_COLUMNS if c not in predictions.columns]
    if missing:
        raise ValueError(
            f"the {date} date's predictions have no {', '.join(missing)} (scored before change "
            "descriptors existed): score it again with --params=scoring.restart=true"
        )
    colour, texture = DESCRIPTOR_COLUMNS
    return predictions.where(
        (F.col("run_id") == run.run_id) & (F.col("status") == SCORED)
    ).select(
        "chip_id",
        F.col(colour).alias(f"colour_{date}"),
        F.col(texture).alias(f"texture_{date}"),
    )


def _colours(
    frame: pd.DataFrame, criteria: AppearanceCriteria
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(colour before, colour after, cloudy cells)``; a cell is cloudy when cloud-like on
    either date or near such a cell (:func:`~aerial_kedro.change.appearance.cloudy_cells`)."""
    colour_before, cloudy_before = decode_colour_cells(
        list(frame["colour_before"]), criteria.cloudy_cell
    )
    colour_after, cloudy_after = decode_colour_cells(
        list(frame["colour_after"]), criteria.cloudy_cell
    )
    return colour_before, colour_after, cloudy_cells(cloudy_before, cloudy_after, criteria)


def _decoded(frame: pd.DataFrame, criteria: AppearanceCriteria) -> tuple[np.ndarray, ...]:
    """``(colour before, colour after, texture before, texture after, cloudy cells)``."""
    colour_before, colour_after, cloudy = _colours(frame, criteria)
    return (
        colour_before,
        colour_after,
        decode_texture(list(frame["texture_before"])),
        decode_texture(list(frame["texture_after"])),
        cloudy,
    )


def appearance_changes(
    before_predictions: DataFrame,
    before_run: ScoringRun,
    after_predictions: DataFrame,
    after_run: ScoringRun,
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

    def partial_moments(frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in frames:
            if len(frame):
                yield pd.DataFrame({"moments": [pickle.dumps(SceneMoments.of(*_decoded(frame, criteria)))]})

    rows = pairs.mapInPandas(partial_moments, "moments binary").collect()
    if not rows:
        return pd.DataFrame({c: pd.Series(dtype=float) for c in APPEARANCE_COLUMNS})
    moments = reduce(add, (pickle.loads(row["moments"]) for row in rows))
    quantile, neighbours, window, baseline = (
        criteria.colour_quantile,
        criteria.neighbours,
        criteria.cell_window,
        criteria.chip_baseline,
    )
    reference = (
        spark.sparkContext.broadcast(_reference(pairs, len(compared), moments, criteria))
        if neighbours
        else None
    )

    def per_chip(frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in frames:
            if not len(frame):
                continue
            cb, ca, tb, ta, cloudy = _decoded(frame, criteria)
            colour = (
                colour_change(cb, ca, moments, quantile, cloudy, window, baseline)
                if reference is None
                else conditional_colour_change(
                    list(frame["chip_id"]),
                    cb,
                    ca,
                    moments,
                    reference.value,
                    neighbours,
                    quantile,
                    cloudy,
                    window,
                    baseline,
                )
            )
            yield pd.DataFrame(
                {
                    "chip_id": frame["chip_id"],
                    "colour_change": colour,
                    "texture_change": texture_change(tb, ta, moments),
                }
            )

    schema = "chip_id string, colour_change double, texture_change double"
    try:
        return pairs.mapInPandas(per_chip, schema).toPandas()
    finally:
        if reference is not None:
            reference.unpersist()


def _reference(
    pairs: DataFrame, compared: int, moments: SceneMoments, criteria: AppearanceCriteria
) -> CellReference:
    """The clear cells of all compared chips, or of about ``reference_chips`` of them chosen by
    the CRC-32 of their id (the same chips on every run of the scene)."""
    share = criteria.reference_chips / max(compared, 1)
    chosen = (
        pairs
        if share >= 1
        else pairs.where(F.crc32(F.col("chip_id").cast("binary")) < int(share * 2**32))
    )
    frame: pd.DataFrame = chosen.select("chip_id", "colour_before", "colour_after").toPandas()
    colour_before, colour_after, cloudy = _colours(frame, criteria)
    return CellReference.of(list(frame["chip_id"]), colour_before, colour_after, moments, cloudy)
