"""Run outcome (a few numbers per chip, on the driver) -> class raster, GeoJSON, map figure, shares.

Only ``chip_id, status, class_index, confidence`` of each chip are collected from Spark; the
geometry comes from the plan, which the driver already holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from aerial_kedro.geo.chip_grid import ChipGrid
from aerial_kedro.geo.class_map import (
    ClassRaster,
    class_shares,
    plurality_smooth,
    predictions_to_grid,
)
from aerial_kedro.geo.geojson import chips_to_geojson, unlocated_feature_collection
from aerial_kedro.geo.map_png import map_figure, shares_figure
from aerial_kedro.geo.palette import class_colors
from aerial_kedro.pipelines.scoring.chip_inference import EMPTY, SCORED, UNREADABLE

OUTCOME_COLUMNS = ("chip_id", "status", "class_index", "confidence")
PENDING = "pending"


class DuplicateChipError(RuntimeError):
    """A chip appears more than once in a run's predictions (exactly-once was broken)."""


def chip_outcomes(plan: pd.DataFrame, outcome: pd.DataFrame) -> pd.DataFrame:
    """The plan with each chip's ``status``, ``class_index`` and ``confidence``.

    Chips without a prediction yet (run stopped by ``max_chunks``) get status ``pending``.
    """
    duplicated = outcome["chip_id"][outcome["chip_id"].duplicated()]
    if len(duplicated):
        raise DuplicateChipError(
            f"{duplicated.nunique()} chip(s) predicted more than once, e.g. {duplicated.iloc[0]}"
        )
    unknown = set(outcome["chip_id"]) - set(plan["chip_id"])
    if unknown:
        raise ValueError(f"{len(unknown)} predicted chip(s) not in the plan, e.g. {min(unknown)}")
    table = plan.merge(outcome[list(OUTCOME_COLUMNS)], on="chip_id", how="left")
    table["status"] = table["status"].fillna(PENDING)
    return table


def status_counts(table: pd.DataFrame) -> dict[str, int]:
    counts = table["status"].value_counts()
    return {
        "planned": len(table),
        **{status: int(counts.get(status, 0)) for status in (SCORED, EMPTY, UNREADABLE, PENDING)},
    }


def primary_crs(table: pd.DataFrame) -> str:
    """The CRS holding the most chips: the map products are drawn in it."""
    return str(table["crs"].value_counts().idxmax())


def class_raster(
    table: pd.DataFrame,
    crs: str,
    class_names: Sequence[str],
    grid: ChipGrid,
    tags: Mapping[str, Any],
) -> ClassRaster:
    """One pixel per chip of ``crs``, covering every planned chip; unscored chips are nodata."""
    in_crs = table[table["crs"] == crs]
    rows = in_crs["row"].astype(np.int64)
    cols = in_crs["col"].astype(np.int64)
    extent = (
        int(rows.min()),
        int(cols.min()),
        int(rows.max() - rows.min() + 1),
        int(cols.max() - cols.min() + 1),
    )
    scored = in_crs[in_crs["status"] == SCORED]
    class_grid = predictions_to_grid(
        scored["row"].astype(np.int64),
        scored["col"].astype(np.int64),
        scored["class_index"].astype(np.int64),
        scored["confidence"].astype(np.float32),
        chip_size_m=grid.size,
        extent=extent,
    )
    return ClassRaster(
        class_grid.classes,
        class_grid.transform,
        crs,
        tuple(class_names),
        tuple(class_colors(class_names)),
        {key: str(value) for key, value in tags.items()},
    )


def _scored_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    scored = table[table["status"] == SCORED]
    columns = ["chip_id", "class_index", "confidence"]
    if scored["kind"].eq("chip").any():
        columns += ["row", "col", "crs", "minx", "miny", "maxx", "maxy"]
    records = scored[columns].to_dict("records")
    for record in records:
        record["class_index"] = int(record["class_index"])
        for key in ("row", "col"):
            if key in record:
                record[key] = int(record[key])
    return records


def chips_geojson(table: pd.DataFrame, class_names: Sequence[str]) -> dict[str, Any]:
    """Scored chips as lon/lat polygons with class and confidence (tiles: no geometry)."""
    records = _scored_records(table)
    if (table["kind"] == "chip").all():
        return chips_to_geojson(records, class_names=class_names, with_probabilities=False)
    return unlocated_feature_collection(records, class_names)


def shares_of_scored(table: pd.DataFrame, class_names: Sequence[str]) -> dict[str, float]:
    """Fraction of scored items in each class (empty and unreadable chips do not count)."""
    indices = table.loc[table["status"] == SCORED, "class_index"].astype(np.int64).to_numpy()
    counts = np.bincount(indices, minlength=len(class_names))
    total = counts.sum()
    return {name: float(counts[i]) / total if total else 0.0 for i, name in enumerate(class_names)}


def smoothed_classes(raster: ClassRaster) -> np.ndarray:
    return plurality_smooth(raster.classes)


def map_title(source_name: str, counts: Mapping[str, int], model: str) -> str:
    title = f"Land use of {source_name}: {counts[SCORED]} chips classified by {model}"
    if counts[EMPTY] or counts[UNREADABLE]:
        title += f" ({counts[EMPTY]} empty, {counts[UNREADABLE]} unreadable)"
    if counts[PENDING]:
        title += f" - {counts[PENDING]} not scored yet"
    return title


def raster_map_figure(
    raster: ClassRaster,
    smoothed: np.ndarray | None,
    chip_size_m: float,
    title: str,
) -> Figure:
    return map_figure(
        raster.classes,
        raster.class_names,
        raster.colors,
        chip_size_m,
        title,
        class_shares(raster.classes, raster.class_names),
        smoothed=smoothed,
    )


def tiles_figure(shares: Mapping[str, float], class_names: Sequence[str], title: str) -> Figure:
    return shares_figure(shares, class_names, title=title)
