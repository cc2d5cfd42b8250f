"""Reference labels -> labelled chips of the global chip grid, and the labels rejected.

This module's one job is to put labels already read (:func:`.label_files.read_reference_labels`:
``label_id``, ``label``, ``geometry``) on exactly the grid that scoring cuts (:mod:`.grid`), so
a labelled chip and a scored chip with the same ``chip_id`` are the same ground square: a point
says "the chip here is forest", a polygon "the chips I cover are cropland".

* :func:`chips_for_labels` reprojects the labels to the rasters' CRS and finds their chips: a
  polygon labels every chip it covers by at least ``min_cover`` of the chip's area, a point the
  chip that contains it. Labels of one class on a chip merge; labels of different classes on
  one chip drop the chip and are reported, as are polygons that label no chip.
* :func:`reject_outside` drops labelled chips that no raster covers (not in the scoring plan).
* :func:`label_planned_chips` does both for a scoring plan, per CRS, with the labels clipped to
  the plan's chips (:func:`plan_footprint`) and their candidate chips capped
  (:class:`PlanTooLargeError`) before any chip is enumerated.

Rejected labels are never silently lost: every reason is a row of the ``rejected`` table
(:data:`REJECTED_COLUMNS`). Plain Python + geopandas/shapely: no Spark, no Kedro.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from aerial_kedro.chip_rows import CHIP_PLACE_COLUMNS
from aerial_kedro.geo.grid import ChipGrid, crs_key, crs_string
from aerial_kedro.geo.label_files import ReferenceLabelError

logger = logging.getLogger(__name__)

CHIP_COLUMNS = (*CHIP_PLACE_COLUMNS, "label", "cover", "label_ids")
REJECTED_COLUMNS = ("label_id", "label", "reason", "chip_id")
# Relative tolerance on cover, so a square drawn exactly on a chip (and round-tripped through
# lon/lat with 7 decimals, ~1e-5 of a chip off) still counts as covering it by min_cover.
_COVER_EPS = 1e-4


def chips_for_labels(
    labels: gpd.GeoDataFrame,
    crs: str,
    grid: ChipGrid,
    min_cover: float = 0.5,
    *,
    footprint: shapely.Geometry | None = None,
    max_chips: int | None = None,
    source: str = "reference labels",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The chips the labels label, on ``grid`` in ``crs``: ``(labelled chips, rejected labels)``.

    A polygon labels every chip whose area it covers by at least ``min_cover`` (0 < min_cover
    <= 1); a point labels the chip containing it. Candidate chips come from each polygon's
    bounding box and the covered area is computed with shapely's vectorised intersection, so
    tens of thousands of polygons stay fast.

    Labelled chips: :data:`CHIP_COLUMNS` - ``cover`` is the largest share of the chip one
    polygon of the chip's class covers (NaN when only points label it), ``label_ids`` the
    sorted ids of the labels that agree on it. Chips that labels of different classes claim are
    dropped, and each label involved is rejected (one row per label and chip), naming a label
    of another class it contradicts. A polygon that covers no chip by ``min_cover`` is rejected
    too. Rejected labels: :data:`REJECTED_COLUMNS`.

    ``footprint`` (a geometry in ``crs``: where the rasters have chips) bounds the work: labels
    are clipped to it before any chip is enumerated, and a label wholly outside it is put on
    the one chip under a point of its own (:func:`reject_outside` then rejects it as outside
    every raster). ``max_chips`` caps the candidate chips of all labels together; over it,
    :class:`PlanTooLargeError` is raised, one line naming ``source`` and the largest label,
    before any chip is enumerated. A label with a NaN or infinite coordinate, or one that does
    not project to ``crs``, is rejected with that reason.
    """
    if not 0 < min_cover <= 1:
        raise ValueError(f"min_cover: {min_cover} is outside (0, 1]")
    if labels.crs is None:
        raise ReferenceLabelError("reference labels have no CRS")
    rejected: list[dict[str, Any]] = []
    labels, bad = _split_non_finite(labels, "has a NaN or infinite coordinate")
    rejected += bad
    projected, bad = _split_non_finite(
        labels.to_crs(CRS.from_user_input(crs)), f"cannot be projected to {crs_string(crs)}"
    )
    rejected += bad
    size = grid.size
    ids = projected["label_id"].to_numpy()
    classes = projected["label"].astype(str).to_numpy()
    geometries = projected.geometry.to_numpy()

    kinds = shapely.get_type_id(geometries)
    areal = np.isin(kinds, [3, 6])  # Polygon, MultiPolygon
    clipped = geometries if footprint is None else clip_to_footprint(geometries, footprint)
    check_candidates(ids, candidate_chips(clipped, size), max_chips, source)
    hits = [
        _polygon_hits(np.flatnonzero(areal), clipped, size, min_cover),
        _point_hits(np.flatnonzero(~areal), clipped, size),
    ]
    if footprint is not None:
        labelled = np.zeros(len(geometries), dtype=bool)
        for found in hits:
            labelled[found["index"].to_numpy(dtype="int64") if len(found) else []] = True
        hits.append(_outside_hits(geometries, clipped, footprint, size, labelled))
    hits_frame = (
        pd.concat([h for h in hits if len(h)], ignore_index=True)
        if any(len(h) for h in hits)
        else pd.DataFrame({"index": [], "row": [], "col": [], "cover": []})
    )
    hits_frame = hits_frame.astype({"index": "int64", "row": "int64", "col": "int64"})
    hits_frame["label"] = classes[hits_frame["index"].to_numpy()]

    covered = set(hits_frame["index"].tolist())
    share = f"{min_cover * 100:g} %"
    for index in np.flatnonzero(areal):
        if index not in covered:
            rejected.append(
                _rejection(ids[index], classes[index], f"covers no chip by at least {share}")
            )

    key, crs_text = crs_key(crs), crs_string(crs)
    records: list[dict[str, Any]] = []
    for (row, col), group in hits_frame.groupby(["row", "col"], sort=True):
        chip = f"{key}_{row}_{col}"
        chip_classes = sorted(set(group["label"]))
        if len(chip_classes) > 1:
            rejected.extend(_contradictions(group, ids, chip))
            continue
        polygon_cover = group["cover"].dropna()
        records.append(
            {
                "chip_id": chip,
                "crs": crs_text,
                "row": int(row),
                "col": int(col),
                "minx": col * size,
                "miny": -(row + 1) * size,
                "maxx": (col + 1) * size,
                "maxy": -row * size,
                "label": chip_classes[0],
                "cover": float(polygon_cover.max()) if len(polygon_cover) else math.nan,
                "label_ids": sorted({_native(ids[i]) for i in group["index"]}),
            }
        )
    chips = pd.DataFrame.from_records(records, columns=list(CHIP_COLUMNS))
    chips = chips.astype({"row": "int64", "col": "int64", "cover": "float64"})
    return chips, pd.DataFrame.from_records(rejected, columns=list(REJECTED_COLUMNS))


class PlanTooLargeError(ReferenceLabelError):
    """Labels that would put more candidate chips on the grid than the cap allows."""


def _split_non_finite(
    labels: gpd.GeoDataFrame, reason: str
) -> tuple[gpd.GeoDataFrame, list[dict[str, Any]]]:
    """``(labels with finite coordinates only, a rejection per other label with reason)``."""
    geometries = labels.geometry.to_numpy()
    coordinates, owner = shapely.get_coordinates(geometries, return_index=True)
    bad_owner = np.unique(owner[~np.isfinite(coordinates).all(axis=1)])
    if not len(bad_owner):
        return labels, []
    bad = np.zeros(len(labels), dtype=bool)
    bad[bad_owner] = True
    rejected = [
        _rejection(label_id, label, reason)
        for label_id, label in zip(
            labels["label_id"].to_numpy()[bad], labels["label"].to_numpy()[bad], strict=True
        )
    ]
    return labels[~bad], rejected


def plan_footprint(chip_plan: pd.DataFrame, crs: str, size: float) -> shapely.Geometry:
    """The ground the planned chips of ``crs`` cover, as one (multi)polygon in ``crs``.

    Chips come from ``row`` / ``col`` columns, else from the ``chip_id`` (``<crs>_<row>_<col>``);
    each row's runs of neighbouring chips become one box, so the union stays cheap for millions
    of chips (a few boxes per chip row).
    """
    part = chip_plan[chip_plan["crs"] == crs]
    if {"row", "col"} <= set(part.columns):
        rows = part["row"].to_numpy(dtype="int64")
        cols = part["col"].to_numpy(dtype="int64")
    else:
        cells = part["chip_id"].astype(str).str.rsplit("_", n=2, expand=True)
        rows, cols = cells[1].astype("int64").to_numpy(), cells[2].astype("int64").to_numpy()
    if not len(rows):
        return shapely.Polygon()
    order = np.lexsort((cols, rows))
    rows, cols = rows[order], cols[order]
    starts = np.flatnonzero(np.r_[True, (np.diff(rows) != 0) | (np.diff(cols) != 1)])
    ends = np.r_[starts[1:], len(rows)] - 1
    boxes = shapely.box(
        cols[starts] * size,
        -(rows[starts] + 1) * size,
        (cols[ends] + 1) * size,
        -rows[starts] * size,
    )
    return shapely.union_all(boxes)


def clip_to_footprint(geometries: np.ndarray, footprint: shapely.Geometry) -> np.ndarray:
    """Each label's part inside ``footprint`` (empty when it has none)."""
    shapely.prepare(footprint)
    return shapely.intersection(geometries, footprint)


def candidate_chips(geometries: np.ndarray, size: float) -> np.ndarray:
    """Chips of each geometry's bounding box (0 for an empty one): the work enumerating it costs."""
    bounds = shapely.bounds(geometries)
    empty = shapely.is_empty(geometries)
    bounds[empty] = 0.0
    n_cols = np.maximum(np.ceil(bounds[:, 2] / size) - np.floor(bounds[:, 0] / size), 1)
    n_rows = np.maximum(np.ceil(-bounds[:, 1] / size) - np.floor(-bounds[:, 3] / size), 1)
    return np.where(empty, 0.0, n_cols * n_rows)


def check_candidates(
    ids: np.ndarray, candidates: np.ndarray, max_chips: int | None, source: str
) -> None:
    """Raise :class:`PlanTooLargeError` when the labels' candidate chips exceed ``max_chips``."""
    total = float(candidates.sum())
    if max_chips is None or total <= max_chips:
        return
    largest = int(np.argmax(candidates))
    raise PlanTooLargeError(
        f"{source}: the labels would put {total:,.0f} candidate chips on the grid (label "
        f"{ids[largest]} alone {candidates[largest]:,.0f}), over max_chips ({max_chips:,}) "
        "even clipped to the rasters"
    )


def _outside_hits(
    geometries: np.ndarray,
    clipped: np.ndarray,
    footprint: shapely.Geometry,
    size: float,
    labelled: np.ndarray,
) -> pd.DataFrame:
    """``(index, row, col, cover=NaN)``: for each label that labels no chip and lies mostly
    outside ``footprint`` (a point: at all), the one chip under a point of its own outside it."""
    areal = np.isin(shapely.get_type_id(geometries), [3, 6])
    outside = np.where(
        areal, shapely.area(clipped) < shapely.area(geometries) / 2, shapely.is_empty(clipped)
    )
    indices = np.flatnonzero(outside & ~labelled)
    if not len(indices):
        return pd.DataFrame()
    beyond = shapely.difference(geometries[indices], footprint)
    beyond = np.where(shapely.is_empty(beyond), geometries[indices], beyond)
    points = shapely.point_on_surface(beyond)
    return pd.DataFrame(
        {
            "index": indices,
            "row": np.floor(-shapely.get_y(points) / size).astype("int64"),
            "col": np.floor(shapely.get_x(points) / size).astype("int64"),
            "cover": np.nan,
        }
    )


def _polygon_hits(
    indices: np.ndarray, geometries: np.ndarray, size: float, min_cover: float
) -> pd.DataFrame:
    """``(index, row, col, cover)`` of every chip a polygon covers by at least ``min_cover``."""
    indices = indices[~shapely.is_empty(geometries[indices])]
    if len(indices) == 0:
        return pd.DataFrame()
    bounds = shapely.bounds(geometries[indices])
    col0 = np.floor(bounds[:, 0] / size).astype("int64")
    col1 = np.ceil(bounds[:, 2] / size).astype("int64")  # exclusive
    row0 = np.floor(-bounds[:, 3] / size).astype("int64")
    row1 = np.ceil(-bounds[:, 1] / size).astype("int64")
    n_cols = np.maximum(col1 - col0, 1)
    n_rows = np.maximum(row1 - row0, 1)
    counts = n_cols * n_rows
    owner = np.repeat(np.arange(len(indices)), counts)
    # Position of each candidate inside its polygon's bounding-box block of chips.
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    rows = row0[owner] + offsets // n_cols[owner]
    cols = col0[owner] + offsets % n_cols[owner]
    boxes = shapely.box(cols * size, -(rows + 1) * size, (cols + 1) * size, -rows * size)
    polygons = geometries[indices][owner]
    shapely.prepare(polygons)
    cover = shapely.area(shapely.intersection(polygons, boxes)) / (size * size)
    keep = cover >= min_cover * (1 - _COVER_EPS)
    return pd.DataFrame(
        {
            "index": indices[owner][keep],
            "row": rows[keep],
            "col": cols[keep],
            "cover": np.minimum(cover[keep], 1.0),
        }
    )


def _point_hits(indices: np.ndarray, geometries: np.ndarray, size: float) -> pd.DataFrame:
    """``(index, row, col, cover=NaN)`` of the chip under each point (each part of a MultiPoint)."""
    indices = indices[~shapely.is_empty(geometries[indices])]
    if len(indices) == 0:
        return pd.DataFrame()
    parts, owner = shapely.get_parts(geometries[indices], return_index=True)
    xs, ys = shapely.get_x(parts), shapely.get_y(parts)
    frame = pd.DataFrame(
        {
            "index": indices[owner],
            "row": np.floor(-ys / size).astype("int64"),
            "col": np.floor(xs / size).astype("int64"),
            "cover": np.nan,
        }
    )
    return frame.drop_duplicates(["index", "row", "col"])


def _contradictions(group: pd.DataFrame, ids: np.ndarray, chip: str) -> list[dict[str, Any]]:
    """One rejection per label on a chip claimed by several classes, naming one it contradicts."""
    members = group.drop_duplicates("index").sort_values("index")
    rejected = []
    for index, label in zip(members["index"], members["label"], strict=True):
        other = members[members["label"] != label].iloc[0]
        reason = (
            f"contradicts label {ids[int(other['index'])]} (class {other['label']}) on chip {chip}"
        )
        rejected.append(_rejection(ids[index], label, reason, chip))
    return rejected


def _rejection(label_id: Any, label: str, reason: str, chip: str | None = None) -> dict[str, Any]:
    return {"label_id": _native(label_id), "label": label, "reason": reason, "chip_id": chip}


def _native(label_id: Any) -> Any:
    """A label id as plain Python: numpy ints become int; ids that are text already are str."""
    return label_id.item() if hasattr(label_id, "item") else label_id


def reject_outside(
    chips: pd.DataFrame, planned_chip_ids: Iterable[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split labelled chips into those in the rasters' chip plan and the rest.

    ``planned_chip_ids`` are the chips scoring plans over the reference rasters (fully inside
    their union). A labelled chip outside that plan has no pixels to learn from or to compare
    with: each of its labels is rejected, ``"outside every raster (chip <id>)"``.
    """
    planned = set(planned_chip_ids)
    inside = chips["chip_id"].isin(planned)
    kept = chips[inside].reset_index(drop=True)
    rejected = [
        _rejection(label_id, label, f"outside every raster (chip {chip})", chip)
        for chip, label, label_ids in zip(
            chips.loc[~inside, "chip_id"],
            chips.loc[~inside, "label"],
            chips.loc[~inside, "label_ids"],
            strict=True,
        )
        for label_id in label_ids
    ]
    return kept, pd.DataFrame.from_records(rejected, columns=list(REJECTED_COLUMNS))


def label_planned_chips(
    labels: gpd.GeoDataFrame,
    chip_plan: pd.DataFrame,
    grid: ChipGrid,
    min_cover: float,
    *,
    max_chips: int | None = None,
    source: str = "reference labels",
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Labelled chips of a chip plan: ``(inside the plan, outside it, rejected labels)``.

    ``chip_plan`` is a scoring plan (columns ``chip_id``, ``crs``): the chips `score` reads
    from the rasters, for `assess` and for training from reference labels alike. Labels are put
    on the grid of every CRS the plan uses (rasters of several CRSs are planned per CRS);
    labelled chips that are not in the plan are returned apart, and their labels rejected as
    outside every raster. Labels are clipped to the plan's chips before any chip is enumerated
    (:func:`plan_footprint`), so a label reaching far beyond the rasters costs no more than
    the plan; ``max_chips`` caps what one label file may put on the grid.
    """
    crs_values = sorted(chip_plan["crs"].dropna().unique())
    chips, rejected = [], []
    for crs in crs_values:
        footprint = plan_footprint(chip_plan, crs, grid.size)
        labelled, problems = chips_for_labels(
            labels, crs, grid, min_cover, footprint=footprint, max_chips=max_chips, source=source
        )
        chips.append(labelled)
        rejected.append(problems)
    if not chips:
        raise ValueError("the chip plan has no georeferenced chips to label")
    labelled = pd.concat(chips, ignore_index=True)
    # With several CRSs a label that fits none of them is rejected once per CRS: keep one row.
    rejected_all = pd.concat(rejected, ignore_index=True).drop_duplicates(
        ["label_id", "reason"], ignore_index=True
    )
    kept, outside = reject_outside(labelled, chip_plan["chip_id"])
    outside_chips = labelled[~labelled["chip_id"].isin(kept["chip_id"])].reset_index(drop=True)
    if len(crs_values) > 1:  # a chip outside one CRS's plan may be inside another's
        outside = outside[~outside["label_id"].isin(kept["label_ids"].explode())]
    logger.info(
        "Reference labels -> %d labelled chip(s) in the plan, %d outside every raster, "
        "%d label problem(s)",
        len(kept), len(outside_chips), len(rejected_all),
    )  # fmt: skip
    return kept, outside_chips, pd.concat([rejected_all, outside], ignore_index=True)
