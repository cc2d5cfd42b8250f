"""Two dates' chip outcomes -> one row per chip: status, classes, change score, changed.

Every chip planned on either date gets a row, so nothing is dropped silently. ``status``:

* ``both_scored`` - classified on both dates: the only chips with a ``change_score``;
* ``cloudy`` - classified on both dates, but clouds cover more than ``max_cloud_fraction``
  of it on either date, or of a chip within ``cloud_neighbours`` chips of it on the grid
  (cloud shadows and the thin cloud around a cloud, which the cloud test misses, fall there):
  a map under clouds is not land use, so never ``changed``;
* ``before_only`` / ``after_only`` - the chip lies inside one date's footprint only;
* ``unreadable`` / ``pending`` / ``empty`` - inside both footprints but not classified on one
  date (read error; run stopped before its chunk; nodata or black), in that priority.

``status_before`` / ``status_after`` keep each date's own outcome (``scored``, ``empty``,
``unreadable``, ``pending``, or ``absent`` outside its footprint).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from aerial_kedro.change.appearance import AppearanceCriteria, GridPlaces, combined_score
from aerial_kedro.change.scores import (
    DEFAULT_GROUPS,
    Grouping,
    change_scores,
    check_method,
    make_grouping,
)
from aerial_kedro.chip_rows import CHIP_PLACE_COLUMNS, EMPTY, PENDING, UNREADABLE

DATES = ("before", "after")
BOTH_SCORED, CLOUDY = "both_scored", "cloudy"
BEFORE_ONLY, AFTER_ONLY = "before_only", "after_only"
STATUSES = (BOTH_SCORED, CLOUDY, BEFORE_ONLY, AFTER_ONLY, UNREADABLE, PENDING, EMPTY)
SCORED, ABSENT = "scored", "absent"

GEOMETRY_COLUMNS = (*CHIP_PLACE_COLUMNS, "lon", "lat")
# Per-date columns a chip outcome carries (``<name>_before`` / ``<name>_after`` once joined).
OUTCOME_COLUMNS = (
    "status",
    "predicted_label",
    "class_index",
    "confidence",
    "probabilities",
    "cloud_fraction",
)


@dataclass(frozen=True)
class ChangeCriteria:
    """How chips are compared; see ``conf/base/parameters_change.yml`` for the measured choice."""

    threshold: float = 0.5
    method: str = "tv"
    confidence_floor: float = 0.5
    require_class_change: bool = False
    max_cloud_fraction: float = 0.2
    groups: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_GROUPS))
    cloud_neighbours: int = 0
    cloudy_date_share: float = 1.0
    cloudy_date_cloud_fraction: float = 0.2

    def __post_init__(self) -> None:
        check_method(self.method)
        for name in ("threshold", "confidence_floor", "max_cloud_fraction", "cloudy_date_share",
                     "cloudy_date_cloud_fraction"):  # fmt: skip
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name}: {value} is outside [0, 1]")


def _geometry(plans: Sequence[pd.DataFrame]) -> pd.DataFrame:
    frames = [plan[[c for c in GEOMETRY_COLUMNS if c in plan.columns]] for plan in plans]
    geometry = pd.concat(frames, ignore_index=True).drop_duplicates("chip_id", keep="first")
    return geometry.sort_values(["crs", "row", "col"], kind="stable").reset_index(drop=True)


def _date_status(table: pd.DataFrame, date: str, planned: set[str]) -> pd.Series:
    status = table[f"status_{date}"].astype(object)
    in_plan = table["chip_id"].isin(planned)
    return status.where(status.notna(), np.where(in_plan, PENDING, ABSENT))


def combined_status(
    status_before: pd.Series,
    status_after: pd.Series,
    cloudy: pd.Series,
) -> pd.Series:
    """The chip ``status`` from each date's own status (see the module docstring)."""
    b = status_before.to_numpy(dtype=object)
    a = status_after.to_numpy(dtype=object)
    either = lambda value: (b == value) | (a == value)  # noqa: E731
    conditions = [
        b == ABSENT,
        a == ABSENT,
        either(UNREADABLE),
        either(PENDING),
        either(EMPTY),
        cloudy.to_numpy(dtype=bool),
    ]
    choices = [AFTER_ONLY, BEFORE_ONLY, UNREADABLE, PENDING, EMPTY, CLOUDY]
    return pd.Series(np.select(conditions, choices, default=BOTH_SCORED), index=status_before.index)


def _stack(values: pd.Series, n_classes: int) -> np.ndarray:
    if values.empty:
        return np.zeros((0, n_classes))
    rows = [np.asarray(v, dtype=np.float64) for v in values]
    bad = [len(r) for r in rows if len(r) != n_classes]
    if bad:
        raise ValueError(f"probability vectors of length {bad[0]} for {n_classes} classes")
    return np.vstack(rows)


def _coarse_columns(
    table: pd.DataFrame, date: str, grouping: Grouping
) -> tuple[pd.Series, pd.Series]:
    """Coarse class and its summed probability of the chips scored on ``date``."""
    scored = table[f"status_{date}"] == SCORED
    names = pd.Series(None, index=table.index, dtype=object)
    confidence = pd.Series(np.nan, index=table.index, dtype=np.float64)
    if scored.any():
        q = grouping.coarse(
            _stack(table.loc[scored, f"probabilities_{date}"], len(grouping.classes))
        )
        names[scored] = np.asarray(grouping.groups, dtype=object)[q.argmax(axis=1)]
        confidence[scored] = q.max(axis=1)
    return names, confidence


def chip_changes(
    joined: pd.DataFrame,
    before_plan: pd.DataFrame,
    after_plan: pd.DataFrame,
    classes: Sequence[str],
    criteria: ChangeCriteria,
) -> pd.DataFrame:
    """One row per chip planned on either date, with both dates' outcome and the change.

    ``joined`` holds ``chip_id`` and, per date, the :data:`OUTCOME_COLUMNS` suffixed
    ``_before`` / ``_after`` (null where the date has no row for the chip; a missing
    ``cloud_fraction_*`` column means "not measured"). ``classes`` is the model's class order
    of the probability vectors, which come out as ``{class: probability}``. Columns added: ``status``, ``class_before``/``class_after``
    (the model's classes), ``coarse_before``/``coarse_after`` and ``coarse_confidence_*``,
    ``change_score`` (null unless ``both_scored``) and ``changed``.
    """
    grouping = make_grouping(classes, criteria.groups)
    check_method(criteria.method, grouping.groups)
    geometry = _geometry([before_plan, after_plan])
    unknown = set(joined["chip_id"]) - set(geometry["chip_id"])
    if unknown:
        raise ValueError(f"{len(unknown)} scored chip(s) in no plan, e.g. {min(unknown)}")
    if joined["chip_id"].duplicated().any():
        raise ValueError(f"chip {joined['chip_id'][joined['chip_id'].duplicated()].iloc[0]} "
                         "appears twice in the joined outcomes")  # fmt: skip
    table = geometry.merge(joined, on="chip_id", how="left")
    for date in DATES:
        for column in OUTCOME_COLUMNS:
            if f"{column}_{date}" not in table.columns:
                table[f"{column}_{date}"] = None
    table["status_before"] = _date_status(table, "before", set(before_plan["chip_id"]))
    table["status_after"] = _date_status(table, "after", set(after_plan["chip_id"]))
    cloud_b = pd.to_numeric(table["cloud_fraction_before"], errors="coerce")
    cloud_a = pd.to_numeric(table["cloud_fraction_after"], errors="coerce")
    cloudy = near_cloud(
        table, cloudy_chips(cloud_b, criteria) | cloudy_chips(cloud_a, criteria),
        criteria.cloud_neighbours,
    )  # fmt: skip
    table["status"] = combined_status(table["status_before"], table["status_after"], cloudy)
    for date in DATES:
        label = table[f"predicted_label_{date}"].astype(object)
        table[f"class_{date}"] = label.where(table[f"status_{date}"] == SCORED, None)
        table[f"coarse_{date}"], table[f"coarse_confidence_{date}"] = _coarse_columns(
            table, date, grouping
        )
        table[f"cloud_fraction_{date}"] = cloud_b if date == "before" else cloud_a
    both = table["status"] == BOTH_SCORED
    score = pd.Series(np.nan, index=table.index, dtype=np.float64)
    if both.any():
        score[both] = change_scores(
            _stack(table.loc[both, "probabilities_before"], len(classes)),
            _stack(table.loc[both, "probabilities_after"], len(classes)),
            grouping,
            method=criteria.method,
            confidence_floor=criteria.confidence_floor,
        )
    table["map_score"] = score
    table["colour_change"] = np.nan
    table["texture_change"] = np.nan
    table["change_score"] = score
    table["changed"] = _flagged(table, both & (score >= criteria.threshold), criteria)
    for date in DATES:
        table[f"probabilities_{date}"] = _named(table[f"probabilities_{date}"], classes)
    return table[list(CHIP_TABLE_COLUMNS)]


def cloudy_chips(cloud: pd.Series, criteria: ChangeCriteria) -> pd.Series:
    """One date's cloudy chips: cloud-like pixels over ``max_cloud_fraction`` of the chip, or,
    on a date with clouds (at least ``cloudy_date_share`` of its measured chips that cloudy),
    over ``cloudy_date_cloud_fraction``: there a few white pixels are cloud, with thin cloud and
    shadow around them, not the bright roofs or sand they are in a clear scene."""
    over = cloud > criteria.max_cloud_fraction
    measured = int(cloud.notna().sum())
    if measured and over.sum() / measured >= criteria.cloudy_date_share:
        over = over | (cloud > criteria.cloudy_date_cloud_fraction)
    return over


def near_cloud(table: pd.DataFrame, cloudy: pd.Series, radius: int) -> pd.Series:
    """``cloudy`` grown by ``radius`` chips on the chip grid (same CRS, row and column each
    within ``radius``): the chips a cloud's shadow and edge may reach."""
    if radius <= 0 or not cloudy.any():
        return cloudy
    places = pd.MultiIndex.from_arrays(
        [table["crs"].astype(str), table["row"].astype(np.int64), table["col"].astype(np.int64)]
    )
    clouds = table.loc[cloudy.to_numpy(dtype=bool)]
    grown = pd.MultiIndex.from_tuples(
        [
            (crs, row + dr, col + dc)
            for crs, row, col in zip(clouds["crs"].astype(str), clouds["row"], clouds["col"],
                                     strict=True)
            for dr in range(-radius, radius + 1)
            for dc in range(-radius, radius + 1)
        ]
    )  # fmt: skip
    return pd.Series(places.isin(grown), index=table.index)


def _flagged(table: pd.DataFrame, over: pd.Series, criteria: ChangeCriteria) -> pd.Series:
    changed = over.copy()
    if criteria.require_class_change:
        changed &= table["coarse_before"] != table["coarse_after"]
    return changed.astype(bool)


def with_appearance(
    table: pd.DataFrame,
    appearance: pd.DataFrame,
    criteria: ChangeCriteria,
    appearance_criteria: AppearanceCriteria,
) -> pd.DataFrame:
    """The chip table scored by appearance (:mod:`aerial_kedro.change.appearance`).

    ``appearance`` holds ``chip_id, colour_change, texture_change`` of the compared chips;
    ``change_score`` becomes their robust z in the scene (with the compared chips around each
    on the grid when ``context_weight`` > 0), ``changed`` = ``change_score >= threshold_z``.
    ``map_score`` keeps the class-probability score for comparison.
    """
    out = table.drop(columns=["colour_change", "texture_change"]).merge(
        appearance[["chip_id", "colour_change", "texture_change"]], on="chip_id", how="left"
    )
    compared = (out["status"] == BOTH_SCORED) & out["colour_change"].notna()
    missing = int(((out["status"] == BOTH_SCORED) & ~compared).sum())
    if missing:
        raise ValueError(f"{missing} compared chip(s) have no appearance descriptors")
    score = pd.Series(np.nan, index=out.index, dtype=np.float64)
    if compared.any():
        chips = out.loc[compared]
        score[compared] = combined_score(
            chips["colour_change"].to_numpy(dtype=np.float64),
            chips["texture_change"].to_numpy(dtype=np.float64),
            appearance_criteria,
            GridPlaces(
                chips["crs"].astype(str).tolist(), chips["row"].to_numpy(), chips["col"].to_numpy()
            ),
        )
    out["change_score"] = score
    out["changed"] = _flagged(out, compared & (score >= appearance_criteria.threshold_z), criteria)
    return out[list(CHIP_TABLE_COLUMNS)]


def _named(vectors: pd.Series, classes: Sequence[str]) -> pd.Series:
    """Probability vectors as ``{class: probability}`` (a Parquet struct that names its classes)."""
    return pd.Series(
        [
            None if v is None or (np.isscalar(v) and pd.isna(v)) else
            {name: float(p) for name, p in zip(classes, v, strict=True)}
            for v in vectors
        ],
        index=vectors.index,
        dtype=object,
    )  # fmt: skip


CHIP_TABLE_COLUMNS = (
    *GEOMETRY_COLUMNS,
    "status",
    "status_before",
    "status_after",
    "class_before",
    "class_after",
    "coarse_before",
    "coarse_after",
    "coarse_confidence_before",
    "coarse_confidence_after",
    "probabilities_before",
    "probabilities_after",
    "cloud_fraction_before",
    "cloud_fraction_after",
    "map_score",
    "colour_change",
    "texture_change",
    "change_score",
    "changed",
)


def status_counts(table: pd.DataFrame) -> dict[str, int]:
    """Chips per status (every status listed, 0 when absent) and ``planned`` = all rows."""
    counts = table["status"].value_counts()
    return {"planned": len(table), **{s: int(counts.get(s, 0)) for s in STATUSES}}


def criteria_from_params(params: Mapping[str, Any]) -> ChangeCriteria:
    """:class:`ChangeCriteria` from the ``change`` parameter block (already validated)."""
    return ChangeCriteria(
        threshold=float(params["threshold"]),
        method=str(params["score"]) if params["score"] != "appearance" else "tv",
        confidence_floor=float(params["confidence_floor"]),
        require_class_change=bool(params["require_class_change"]),
        max_cloud_fraction=float(params["max_cloud_fraction"]),
        groups=dict(params["groups"]) if params.get("groups") is not None else dict(DEFAULT_GROUPS),
        cloud_neighbours=int(params.get("cloud_neighbours") or 0),
        cloudy_date_share=float(params.get("cloudy_date_share", 1.0)),
        cloudy_date_cloud_fraction=float(
            params.get("cloudy_date_cloud_fraction", params["max_cloud_fraction"])
        ),
    )
