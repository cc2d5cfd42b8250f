"""Change between two dates: both scored by ``score`` (namespaces ``before`` / ``after``), then

1. :func:`validate_change_params` - one line naming a bad ``change.*`` key;
2. :func:`compare_dates` - the two runs' chips joined by chip id in Spark; only a few values
   per chip (status, class, probabilities, cloud fraction) reach the driver, never features;
   every chip planned on either date gets a row of the chip table (:mod:`aerial_kedro.change.table`);
3. :func:`summarize_transitions` - transition matrix and net change (JSON);
4. :func:`build_change_products` - change GeoTIFF, changed chips GeoJSON, the PNG;
5. :func:`assess_change` - with ``change.reference``: detection metrics (JSON and MLflow).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from aerial_kedro.change.appearance import gaussian_tail
from aerial_kedro.change.figure import Imagery, change_figure, date_label
from aerial_kedro.change.metrics import detection_metrics
from aerial_kedro.change.raster import (
    change_codes,
    change_raster,
    chip_codes,
    class_grid,
    group_colors,
)
from aerial_kedro.change.reference import (
    chip_changed_fraction,
    is_vector_reference,
    read_reference_mask,
    reference_truth,
    vector_changed_fraction,
)
from aerial_kedro.change.scores import make_grouping
from aerial_kedro.change.table import (
    BOTH_SCORED,
    CLOUDY,
    DATES,
    OUTCOME_COLUMNS,
    PENDING,
    chip_changes,
    criteria_from_params,
    status_counts,
    with_appearance,
)
from aerial_kedro.change.transitions import transition_summary
from aerial_kedro.chips.records import ModelDescription, ScoringRun
from aerial_kedro.chips.settings import ScoringSettings
from aerial_kedro.geo.class_map import ClassRaster
from aerial_kedro.geo.geojson import chips_to_geojson
from aerial_kedro.geo.grid import ChipGrid
from aerial_kedro.geo.preview import preview_grid, read_preview, source_files
from aerial_kedro.geo.windows import map_cells
from aerial_kedro.pipelines.change.descriptors import appearance_changes
from aerial_kedro.pipelines.change.settings import APPEARANCE, ChangeSettings

logger = logging.getLogger(__name__)

# Robust z thresholds the appearance score is reported at (against a reference).
Z_SWEEP = (1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0)
_RASTER_FILE = re.compile(r"\.(tiff?|vrt|jp2|img)$", re.IGNORECASE)


# --------------------------------------------------------------------------- 1. parameters


def validate_change_params(change: Mapping[str, Any]) -> ChangeSettings:
    """The ``change`` block checked and typed; :class:`ParameterError` names the bad key."""
    return ChangeSettings.from_params(change)


# --------------------------------------------------------------------------- 2. chip table


def _date_outcomes(predictions: DataFrame, run: ScoringRun, date: str) -> DataFrame:
    columns = [c for c in OUTCOME_COLUMNS if c in predictions.columns]
    frame = predictions.where(F.col("run_id") == run.run_id)
    return frame.select("chip_id", *(F.col(c).alias(f"{c}_{date}") for c in columns))


def _check_runs(runs: Sequence[ScoringRun], models: Sequence[ModelDescription]) -> None:
    for date, run in zip(DATES, runs, strict=True):
        if run.is_tiles:
            raise ValueError(
                f"change.{date}: '{run.source}' is a folder of plain tiles; change needs "
                "georeferenced rasters"
            )
    if models[0].classes != models[1].classes:
        raise ValueError("the two dates were scored by models with different classes")


def run_grid(run: ScoringRun, plan: pd.DataFrame) -> ChipGrid:
    """The chip grid a scoring run planned on (runs older than ``chip_stride_px``: no overlap)."""
    return ChipGrid(
        int(plan["chip_px"].iloc[0]), float(plan["resolution"].iloc[0]), run.chip_stride_px
    )


def _date_cells(
    predictions: DataFrame,
    run: ScoringRun,
    plan: pd.DataFrame,
    classes: Sequence[str],
    grid: ChipGrid,
    max_empty_fraction: float,
) -> pd.DataFrame:
    """One date's overlapping windows averaged into cells (:mod:`aerial_kedro.geo.windows`)."""
    columns = [c for c in OUTCOME_COLUMNS if c in predictions.columns]
    outcome = predictions.where(F.col("run_id") == run.run_id).select("chip_id", *columns)
    windows = plan.merge(outcome.toPandas(), on="chip_id", how="left")
    windows["status"] = windows["status"].fillna(PENDING)
    return map_cells(windows, grid, classes, max_empty_fraction)


def _suffixed(cells: pd.DataFrame, date: str) -> pd.DataFrame:
    columns = [c for c in OUTCOME_COLUMNS if c in cells.columns]
    return cells[["chip_id", *columns]].rename(columns={c: f"{c}_{date}" for c in columns})


def compare_dates(
    before_predictions: DataFrame,
    before_run: ScoringRun,
    before_plan: pd.DataFrame,
    before_model: ModelDescription,
    after_predictions: DataFrame,
    after_run: ScoringRun,
    after_plan: pd.DataFrame,
    after_model: ModelDescription,
    change: ChangeSettings,
) -> pd.DataFrame:
    """The chip table: both dates' chips joined by chip id, with status and change score."""
    _check_runs((before_run, after_run), (before_model, after_model))
    grid = run_grid(before_run, before_plan)
    if run_grid(after_run, after_plan) != grid:
        raise ValueError(
            f"the two dates were scored on different chip grids ({grid} vs "
            f"{run_grid(after_run, after_plan)}); score both with the same scoring settings"
        )
    if grid.overlapping and change.score == APPEARANCE:
        raise ValueError(
            "change.score: appearance compares chips side by side, not overlapping windows "
            f"(scoring.chip_stride_px={grid.stride_px}); pass --params=change.score=tv"
        )
    if grid.overlapping:
        classes = before_model.classes
        max_empty_fraction = before_run.max_empty_fraction
        before_cells, after_cells = (
            _date_cells(predictions, run, plan, classes, grid, max_empty_fraction)
            for predictions, run, plan in (
                (before_predictions, before_run, before_plan),
                (after_predictions, after_run, after_plan),
            )
        )
        outcomes = _suffixed(before_cells, "before").merge(
            _suffixed(after_cells, "after"), on="chip_id", how="outer"
        )
        before_plan, after_plan = before_cells, after_cells
    else:
        joined = _date_outcomes(before_predictions, before_run, "before").join(
            _date_outcomes(after_predictions, after_run, "after"), on="chip_id", how="full_outer"
        )
        outcomes = joined.toPandas()
    if "cloud_fraction_before" not in outcomes.columns:
        # Runs scored before scoring wrote `cloud_fraction`: no chip can be `cloudy` then.
        logger.warning("Predictions have no cloud_fraction: cloudy chips cannot be detected")
    criteria = criteria_from_params(change.model_dump())  # plain values for the domain code
    table = chip_changes(outcomes, before_plan, after_plan, before_model.classes, criteria)
    if change.score == APPEARANCE:
        compared = table.loc[table["status"] == BOTH_SCORED, "chip_id"].tolist()
        appearance = appearance_changes(
            before_predictions,
            before_run,
            after_predictions,
            after_run,
            compared,
            change.appearance.criteria(),
        )
        table = with_appearance(table, appearance, criteria, change.appearance.criteria())
    counts = status_counts(table)
    logger.info(
        "Change %s -> %s: %d chips, %d both scored, %d changed; %s",
        before_run.run_id, after_run.run_id, counts["planned"], counts[BOTH_SCORED],
        int(table["changed"].sum()),
        ", ".join(f"{k} {v}" for k, v in counts.items() if k not in ("planned", BOTH_SCORED) and v),
    )  # fmt: skip
    return table


# --------------------------------------------------------------------------- 3. transitions


def _groups(change: ChangeSettings, model: ModelDescription) -> tuple[str, ...]:
    return make_grouping(model.classes, change.groups).groups


def summarize_transitions(
    chip_table: pd.DataFrame,
    change: ChangeSettings,
    before_run: ScoringRun,
    after_run: ScoringRun,
    model_info: ModelDescription,
) -> dict[str, Any]:
    """Transition matrix (chips and km2), net change per coarse class, run description."""
    summary = transition_summary(chip_table, _groups(change, model_info))
    return {
        "before": _run_description(before_run),
        "after": _run_description(after_run),
        "model": model_info.model,
        "featurizer": model_info.featurizer,
        **score_description(change, chip_table),
        "require_class_change": change.require_class_change,
        "max_cloud_fraction": change.max_cloud_fraction,
        "cloudy_date_share": change.cloudy_date_share,
        "cloudy_date_cloud_fraction": change.cloudy_date_cloud_fraction,
        "cloud_neighbours": change.cloud_neighbours,
        "cloud_fraction_measured": bool(chip_table["cloud_fraction_before"].notna().any()),
        **summary,
    }


def score_description(change: ChangeSettings, chip_table: pd.DataFrame) -> dict[str, Any]:
    """What ``change_score`` and ``changed`` mean in this run, and how many chips were flagged."""
    compared = chip_table["status"] == BOTH_SCORED
    flagged = float(chip_table.loc[compared, "changed"].mean()) if compared.any() else None
    if change.score != APPEARANCE:
        return {"score": change.score, "threshold": change.threshold,
                "confidence_floor": change.confidence_floor, "flagged_share": flagged}  # fmt: skip
    appearance = change.appearance
    return {
        "score": APPEARANCE,
        "threshold": appearance.threshold_z,
        "threshold_meaning": "robust z: the chip's change in robust standard deviations "
        "(1.4826 MAD) above its scene's median chip",
        "colour_quantile": appearance.colour_quantile,
        "texture_weight": appearance.texture_weight,
        "neighbours": appearance.neighbours,
        "reference_chips": appearance.reference_chips,
        "map_score": change.map_score,
        "flagged_share": flagged,
        "expected_false_alarm_rate_if_normal": gaussian_tail(appearance.threshold_z),
    }


def display_name(source: str) -> str:
    """A short name of a source for titles: a file's stem, a folder's ``parent/name``.

    Folders of per-band files are often named by date only (OSCD ``pisa/imgs_1``), so the
    parent folder is kept.
    """
    parts = [p for p in source.rstrip("/").replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts:
        return source
    name = parts[-1]
    if _RASTER_FILE.search(name):
        return _RASTER_FILE.sub("", name)
    return "/".join(parts[-2:])


def _run_description(run: ScoringRun) -> dict[str, Any]:
    fit = None if run.radiometry_fit is None else dict(run.radiometry_fit)
    return {"source": run.source, "run_id": run.run_id,
            "radiometry": run.radiometry.name if run.radiometry else None, "radiometry_fit": fit}  # fmt: skip


# --------------------------------------------------------------------------- 4. products


def _primary_crs(chip_table: pd.DataFrame) -> str:
    return str(chip_table["crs"].value_counts().idxmax())


def _sources(plan: pd.DataFrame, crs: str) -> list[str]:
    in_crs = plan[plan["crs"] == crs]
    return list(dict.fromkeys(s for sources in in_crs["sources"] for s in sources))


def _preview(
    plan: pd.DataFrame, raster: ClassRaster, title: str, bands: Sequence[int]
) -> Imagery | None:
    transform, shape = preview_grid(raster)
    if raster.crs is None:  # plain tiles: nothing to place imagery on
        return None
    try:
        rgb = read_preview(_sources(plan, raster.crs), raster.crs, transform, shape, bands)
    except Exception as error:  # a figure must not fail the run; the map products are written
        logger.warning("No imagery preview for %s: %s", title, error)
        return None
    return Imagery(rgb, title)


def build_change_products(
    chip_table: pd.DataFrame,
    change: ChangeSettings,
    before_run: ScoringRun,
    after_run: ScoringRun,
    before_plan: pd.DataFrame,
    after_plan: pd.DataFrame,
    model_info: ModelDescription,
    scoring: ScoringSettings,
) -> tuple[ClassRaster, dict[str, Any], Figure]:
    """Change GeoTIFF (source CRS, one pixel per chip), changed chips GeoJSON, PNG."""
    groups = _groups(change, model_info)
    codes = change_codes(groups)
    crs = _primary_crs(chip_table)
    grid = run_grid(before_run, before_plan)
    chip_size = grid.cell_size
    tags = {"before": before_run.source, "after": after_run.source,
            "before_run_id": before_run.run_id, "after_run_id": after_run.run_id,
            **{k: v for k, v in score_description(change, chip_table).items()
               if k in ("score", "threshold")},
            "model": model_info.model}  # fmt: skip
    raster = change_raster(chip_table, crs, chip_size, codes, tags)
    in_crs = chip_table[chip_table["crs"] == crs]
    present = pd.Series(chip_codes(in_crs, codes)).value_counts()
    counts = {int(code): int(n) for code, n in present.items()}
    bands = scoring.bands
    imagery = [
        _preview(before_plan, raster, f"before: {display_name(before_run.source)}", bands),
        _preview(after_plan, raster, f"after: {display_name(after_run.source)}", bands),
    ]
    status = status_counts(chip_table)
    changed = int(chip_table["changed"].sum())
    summary = [
        f"appearance change >= {change.appearance.threshold_z:g} robust sd above the scene"
        if change.score == APPEARANCE
        else f"score {change.score} >= {change.threshold:g}"
        f" (confidence floor {change.confidence_floor:g})",
        f"compared {status[BOTH_SCORED]} chips, changed {changed}",
        f"cloudy {status[CLOUDY]}, one date only {status['before_only'] + status['after_only']}",
        f"chip = {grid.size:g} m"
        + (f", cells of {chip_size:g} m (overlapping windows)" if grid.overlapping else "")
        + f"; model {model_info.model}",
    ]
    figure = change_figure(
        raster,
        class_grid(chip_table, crs, "coarse_before", groups, raster),
        class_grid(chip_table, crs, "coarse_after", groups, raster),
        groups,
        group_colors(groups),
        imagery,
        f"Land-use change {display_name(before_run.source)} -> "
        f"{display_name(after_run.source)}",
        summary,
        counts,
        date_labels=(date_label(before_run.source), date_label(after_run.source)),
    )
    return raster, changed_chips_geojson(chip_table), figure


def changed_chips_geojson(chip_table: pd.DataFrame) -> dict[str, Any]:
    """Changed chips as lon/lat polygons with both classes and the score (RFC 7946)."""
    changed = chip_table[chip_table["changed"]]
    records = changed[["chip_id", "crs", "row", "col", "minx", "miny", "maxx", "maxy"]]
    collection = chips_to_geojson(records.to_dict("records"), with_probabilities=False)
    extra = changed[["class_before", "class_after", "coarse_before", "coarse_after",
                     "change_score"]].to_dict("records")  # fmt: skip
    for feature, values in zip(collection["features"], extra, strict=True):
        props = feature["properties"]
        props.pop("class", None)
        props.update(values)
        props["change_score"] = round(float(values["change_score"]), 6)
    return collection


# --------------------------------------------------------------------------- 5. reference


def assess_change(
    chip_table: pd.DataFrame,
    change: ChangeSettings,
    before_plan: pd.DataFrame,
    after_plan: pd.DataFrame,
    after_run: ScoringRun,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Detection metrics against ``change.reference`` (JSON, MLflow metrics); empty without one."""
    reference = change.reference
    if not reference:
        return {"reference": None}, {}
    imagery = [p for s in _sources(after_plan, _primary_crs(chip_table)) for p in source_files(s)]
    imagery += [p for s in _sources(before_plan, _primary_crs(chip_table)) for p in source_files(s)]
    compared = chip_table[chip_table["status"] == BOTH_SCORED]
    if is_vector_reference(reference):
        fractions = vector_changed_fraction(reference, compared)
        origin = reference
    else:
        assert change.reference_change_value is not None  # checked with a reference
        mask = read_reference_mask(reference, change.reference_change_value, imagery)
        grid = run_grid(after_run, after_plan)
        fractions = chip_changed_fraction(mask, compared, grid.stride, grid.resolution)
        origin = mask.georeferenced_from
    assert change.reference_min_fraction is not None  # checked with a reference
    truth = reference_truth(fractions, change.reference_min_fraction)
    rows = compared.merge(truth, on="chip_id", how="inner")
    metrics = {
        "reference": reference,
        "georeferenced_from": origin,
        "reference_min_fraction": change.reference_min_fraction,
        **score_description(change, chip_table),
        "chip_status": status_counts(chip_table),
        **detection_metrics(
            rows["reference_changed"].to_numpy(dtype=bool),
            rows["change_score"].to_numpy(dtype=np.float64),
            rows["changed"].to_numpy(dtype=bool),
            **({"thresholds": Z_SWEEP} if change.score == APPEARANCE else {}),
        ),
    }
    logger.info(
        "Change vs %s: %d chips (%d changed): ROC AUC %s, precision %s, recall %s, F1 %s, "
        "false alarms %s", reference, metrics["chips"], metrics["reference_changed"],
        *(_fmt(metrics[k]) for k in ("roc_auc", "precision", "recall", "f1", "false_alarm_rate")),
    )  # fmt: skip
    tracked = {
        key: {"value": float(metrics[key]), "step": 0}
        for key in ("roc_auc", "precision", "recall", "f1", "false_alarm_rate")
        if metrics[key] is not None
    }
    return metrics, tracked


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
