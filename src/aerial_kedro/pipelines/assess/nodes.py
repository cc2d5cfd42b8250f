"""Assess: a scored map against reference labels -> accuracy and area estimates (Olofsson 2014).

`assess` runs after `score` on the same source (the scoring pipeline resumes: a complete run
scores nothing again and only re-derives its run id, plan and model). Nodes:

1. :func:`prepare_reference` - check the parameters and read the reference labels (one line
   naming the culprit for a missing file, unreadable CRS, unknown class field ...).
2. :func:`assess_map` - put the labels on the run's chip grid, look up the map class of each
   labelled chip in the run's predictions (only those few rows and the per-class chip counts
   leave Spark), leave out chips `train` learned from, and estimate accuracy and class areas
   with map classes as strata (:mod:`aerial_kedro.assessment.olofsson`).
3. :func:`plot_assessment` - the error matrix and the area estimates with their 95 % CIs.

Reference labels drawn by hand where the analyst chose to draw are *not* a probability sample:
the estimators assume each map class's reference chips are a simple random sample of it. The
report says so; its numbers are as good as that assumption.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from pyproj import CRS
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from aerial_kedro.assessment.olofsson import AccuracyAssessment, assess_accuracy, error_matrix
from aerial_kedro.chip_rows import SCORED
from aerial_kedro.chips.settings import ScoringSettings
from aerial_kedro.geo.grid import ChipGrid
from aerial_kedro.geo.label_chips import REJECTED_COLUMNS, label_planned_chips
from aerial_kedro.geo.label_files import read_reference_labels
from aerial_kedro.geo.palette import class_colors
from aerial_kedro.pipelines.assess.settings import AssessSettings

logger = logging.getLogger(__name__)

SAMPLING_NOTE = (
    "Hand-picked reference chips are not a probability sample. These estimates assume the "
    "reference chips of each map class are a simple random sample of that class (stratified "
    "random sampling, map classes as strata, Olofsson et al. 2014); where they were chosen for "
    "being easy to label, accuracies are optimistic and the confidence intervals too narrow."
)
NOT_SCORED = "not scored yet"
OUTSIDE = "outside"

REFERENCE_CHIP_COLUMNS = (
    "chip_id",
    "row",
    "col",
    "reference_class",
    "map_class",
    "predicted_label",
    "status",
    "use",
    "label_ids",
)


# --------------------------------------------------------------------------- 1. parameters, labels


def validate_assess_params(
    reference_labels: Any,
    reference_class_field: Any,
    min_cover: Any,
    assess: Mapping[str, Any],
    reference_layer: Any = None,
) -> AssessSettings:
    """Typed assess settings (:class:`AssessSettings`); a bad key raises a one-line error."""
    return AssessSettings.from_params(
        reference_labels, reference_class_field, min_cover, assess, reference_layer
    )


def prepare_reference(
    reference_labels: Any,
    reference_class_field: Any,
    min_cover: Any,
    assess: Mapping[str, Any],
    reference_layer: Any = None,
) -> tuple[AssessSettings, gpd.GeoDataFrame]:
    """Check the parameters and read the labels, before any Spark work: ``(settings, labels)``."""
    settings = validate_assess_params(
        reference_labels, reference_class_field, min_cover, assess, reference_layer
    )
    labels = read_reference_labels(
        settings.reference_labels, settings.class_field, layer=settings.layer
    )
    counts = labels["label"].value_counts().to_dict()
    logger.info(
        "Reference labels %s: %d features, classes %s",
        settings.reference_labels, len(labels), counts,
    )  # fmt: skip
    return settings, labels


# --------------------------------------------------------------------------- 2. assess


def reference_chip_outcomes(
    predictions: DataFrame, run_id: str, chip_ids: Sequence[str]
) -> pd.DataFrame:
    """``chip_id, status, predicted_label`` of the given chips in the run (a few rows to the driver)."""
    spark = predictions.sparkSession
    wanted = spark.createDataFrame(pd.DataFrame({"chip_id": list(chip_ids)}), "chip_id string")
    rows: pd.DataFrame = (
        predictions.where(F.col("run_id") == run_id)
        .join(F.broadcast(wanted), "chip_id")
        .select("chip_id", "status", "predicted_label")
        .toPandas()
    )
    return rows.astype({"chip_id": str, "status": str})


def stratum_chip_counts(predictions: DataFrame, run_id: str) -> dict[str, int]:
    """Scored chips per predicted class of the run: the strata sizes (counted in Spark)."""
    rows = (
        predictions.where((F.col("run_id") == run_id) & (F.col("status") == SCORED))
        .groupBy("predicted_label")
        .count()
        .collect()
    )
    return {str(row["predicted_label"]): int(row["count"]) for row in rows}


def class_mapping(
    map_classes: Sequence[str], reference_classes: Sequence[str], scheme: Any
) -> tuple[str, dict[str, str]]:
    """``(scheme used, {label: assessed class})`` for map and reference labels alike.

    ``auto``: when every reference class is a map class, compare them as they are; when the map
    speaks EuroSAT (AnnualCrop, Forest ...) and the reference the coarse classes (cropland,
    forest ...), group the map's classes with the ``coarse`` scheme. ``none``: as they are.
    A scheme name or mapping (see :mod:`aerial_kedro.class_schemes`) maps both sides.
    """
    from aerial_kedro.class_schemes import COARSE, check_labels, resolve_scheme

    classes = sorted(set(map_classes) | set(reference_classes))
    if scheme == "none":
        return "none", {c: c for c in classes}
    if scheme == "auto":
        if set(reference_classes) <= set(map_classes):
            return "none", {c: c for c in classes}
        coarse = resolve_scheme("coarse")
        if set(map_classes) <= set(COARSE) and set(reference_classes) <= set(COARSE.values()):
            scheme = "coarse"
        else:
            check_reference_classes(map_classes, reference_classes, {c: c for c in classes}, "none")
        mapping = coarse
    else:
        mapping = resolve_scheme(scheme)
    check_labels(map_classes, mapping, what="map class")
    check_labels(reference_classes, mapping, what="reference class")
    name = scheme if isinstance(scheme, str) else "custom"
    mapped = {c: mapping[c] for c in classes}
    check_reference_classes(map_classes, reference_classes, mapped, name)
    return name, mapped


def check_reference_classes(
    map_classes: Sequence[str],
    reference_classes: Sequence[str],
    mapping: Mapping[str, str],
    scheme: str,
) -> None:
    """Raise one line when a reference class, mapped through ``scheme``, is no map class: the
    map can never say it, so its accuracy is 0 and its area an estimate of nothing."""
    known = {mapping[c] for c in map_classes}
    unknown = sorted({mapping[c] for c in reference_classes} - known)
    if unknown:
        raise ValueError(
            f"reference class(es) {', '.join(unknown)} are not classes of the map "
            f"({', '.join(sorted(known))}, class scheme {scheme}); set assess.class_scheme "
            "or fix reference_labels"
        )


def training_chip_ids(table: Any) -> set[str]:
    """Chip ids of a ``reference_training_chips`` table (pandas or Spark, column ``chip_id``)."""
    if table is None:
        return set()
    if hasattr(table, "toPandas"):
        table = table.select("chip_id").toPandas()
    if "chip_id" not in table.columns:
        raise ValueError("reference_training_chips has no chip_id column")
    return set(table["chip_id"].astype(str))


def chip_area_km2(crs: str, grid: ChipGrid) -> float:
    """Ground area of one chip in km2 (the grid is in the CRS's linear unit)."""
    axis = CRS.from_user_input(crs).axis_info
    factor = axis[0].unit_conversion_factor if axis else 1.0
    return (grid.size * factor) ** 2 / 1e6


def assess_map(
    predictions: DataFrame,
    chip_plan: pd.DataFrame,
    scoring_run: Mapping[str, Any],
    scoring_settings: ScoringSettings,
    model_info: Mapping[str, Any],
    labels: gpd.GeoDataFrame,
    training_chips: Any,
    settings: AssessSettings,
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """``(accuracy report, reference chips table, rejected labels, MLflow metrics)`` of the run."""
    if scoring_run["kind"] != "rasters":
        raise ValueError(
            f"score_source '{scoring_run['source']}' is plain tiles without georeference; "
            "assess needs a scored raster source"
        )
    run_id = scoring_run["run_id"]
    model_classes = [str(c) for c in model_info.get("classes") or []]
    if model_classes:  # refused before any chip is looked up or estimated
        class_mapping(model_classes, sorted(labels["label"].unique()), settings.class_scheme)
    plan_settings = scoring_settings.plan
    grid = plan_settings.tiled_grid
    inside, outside, rejected = label_planned_chips(
        labels,
        chip_plan,
        grid,
        settings.min_cover,
        max_chips=plan_settings.max_chips,
        source=f"reference labels '{settings.reference_labels}'",
    )
    outcomes = reference_chip_outcomes(predictions, run_id, inside["chip_id"].tolist())
    table = inside.merge(outcomes, on="chip_id", how="left")
    table["status"] = table["status"].fillna(NOT_SCORED)
    outside_table = outside.assign(status=OUTSIDE, predicted_label=None)
    table = pd.concat([table, outside_table], ignore_index=True)

    strata_chips = stratum_chip_counts(predictions, run_id)
    scheme, mapping = class_mapping(
        sorted(set(strata_chips) | set(model_classes)),
        sorted(table["label"].unique()),
        settings.class_scheme,
    )
    table["reference_class"] = table["label"].map(mapping)
    table["map_class"] = table["predicted_label"].map(lambda c: mapping.get(c) if c else None)

    excluded = training_chip_ids(training_chips) if settings.exclude_training_chips else set()
    if settings.exclude_training_chips and training_chips is None:
        logger.info("No reference_training_chips table: no chip is left out as a training chip")
    table["use"] = np.select(
        [table["chip_id"].isin(excluded), table["status"] == SCORED],
        ["training", "reference"],
        default="unscored",
    )
    used = table[table["use"] == "reference"]

    chip_km2 = chip_area_km2(chip_plan["crs"].dropna().iloc[0], grid)
    mapped_km2: dict[str, float] = {}
    for label, count in strata_chips.items():
        mapped_km2[mapping[label]] = mapped_km2.get(mapping[label], 0.0) + count * chip_km2
    classes = sorted(set(mapped_km2) | set(used["reference_class"]))
    counts = error_matrix(used["map_class"], used["reference_class"], classes)
    assessment = assess_accuracy(counts, mapped_km2, classes) if len(used) else None
    report = accuracy_report(
        assessment,
        classes=classes,
        mapped_km2=mapped_km2,
        table=table,
        rejected=rejected,
        context={
            "run_id": run_id,
            "score_source": scoring_run["source"],
            "model": model_info.get("model"),
            "featurizer": model_info.get("featurizer"),
            "reference_labels": settings.reference_labels,
            "class_field": settings.class_field,
            "min_cover": settings.min_cover,
            "class_scheme": scheme,
            "class_mapping": {k: v for k, v in mapping.items() if k != v},
            "chip_size_m": grid.size,
            "chip_area_km2": chip_km2,
            "n_labels": len(labels),
        },
    )
    _log_headline(report)
    reference_chips = table.assign(label_ids=table["label_ids"].map(_ids_text))
    reference_chips = reference_chips[list(REFERENCE_CHIP_COLUMNS)]
    rejected = rejected.astype({"label_id": str})[list(REJECTED_COLUMNS)]
    return report, reference_chips, rejected, mlflow_metrics(report)


def _ids_text(ids: Any) -> str:
    return " ".join(str(i) for i in ids) if isinstance(ids, list | tuple | np.ndarray) else ""


def accuracy_report(
    assessment: AccuracyAssessment | None,
    *,
    classes: Sequence[str],
    mapped_km2: Mapping[str, float],
    table: pd.DataFrame,
    rejected: pd.DataFrame,
    context: Mapping[str, Any],
) -> dict[str, Any]:
    """The JSON report: headline keys first, then the error matrix, counts and context."""
    unscored = table[table["use"] == "unscored"]["status"].value_counts().to_dict()
    report: dict[str, Any] = {
        "overall_accuracy": None,
        "users_accuracy": {c: None for c in classes},
        "producers_accuracy": {c: None for c in classes},
        "area_km2": {
            c: {"estimate": None, "ci95": None, "se": None, "mapped": mapped_km2.get(c, 0.0)}
            for c in classes
        },
        "n_reference": int((table["use"] == "reference").sum()),
        "n_unscored": int((table["use"] == "unscored").sum()),
        "n_training_excluded": int((table["use"] == "training").sum()),
        "n_rejected_labels": int(rejected["label_id"].nunique()) if len(rejected) else 0,
        "unscored": {str(k): int(v) for k, v in unscored.items()},
        "classes": list(classes),
        "error_matrix": None,
        "mapped_area_km2": float(sum(mapped_km2.values())),
        "unassessed_area_km2": float(sum(mapped_km2.values())),
        "unsampled_strata": [c for c in classes if mapped_km2.get(c, 0) > 0],
        "note": SAMPLING_NOTE,
        **context,
    }
    if assessment is None:
        report["note"] += " No reference chip falls on a scored chip: nothing was estimated."
        return report
    data = assessment.to_dict()
    report["overall_accuracy"] = data["overall_accuracy"]
    report["users_accuracy"] = _estimates(data["users_accuracy"])
    report["producers_accuracy"] = _estimates(data["producers_accuracy"])
    report["area_km2"] = {
        c: {
            "estimate": value["estimate"],
            "ci95": value["ci95"],
            "se": value["se"],
            "mapped": value["mapped"],
        }
        for c, value in data["area"].items()
    }
    report["error_matrix"] = {**data["error_matrix"], "classes": list(classes)}
    report["unassessed_area_km2"] = data["unassessed_area"]
    report["unsampled_strata"] = data["unsampled_strata"]
    return report


def _estimates(values: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Per class ``{estimate, se, ci95}``; a class that cannot be estimated is None."""
    return {c: (v if v["estimate"] is not None else None) for c, v in values.items()}


def mlflow_metrics(report: Mapping[str, Any]) -> dict[str, Any]:
    """Headline numbers as kedro-mlflow metrics (``{key: {value, step}}``), None left out."""
    values: dict[str, float | None] = {
        "n_reference": report["n_reference"],
        "n_unscored": report["n_unscored"],
    }
    if report["overall_accuracy"]:
        values["overall_accuracy"] = report["overall_accuracy"]["estimate"]
    for key in ("users_accuracy", "producers_accuracy"):
        for name, value in report[key].items():
            values[f"{key}.{_metric_name(name)}"] = value["estimate"] if value else None
    for name, area in report["area_km2"].items():
        values[f"area_km2.{_metric_name(name)}"] = area["estimate"]
        values[f"area_km2_ci95.{_metric_name(name)}"] = area["ci95"]
    return {k: {"value": float(v), "step": 0} for k, v in values.items() if v is not None}


def _metric_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "_-." else "_" for ch in name)


def _log_headline(report: Mapping[str, Any]) -> None:
    oa = report["overall_accuracy"]
    logger.info(
        "Assessment of %s: %d reference chip(s), %d unscored, %d left out as training chips; "
        "overall accuracy %s",
        report["run_id"], report["n_reference"], report["n_unscored"],
        report["n_training_excluded"],
        "n/a" if not oa else f"{oa['estimate']:.3f} +- {oa['ci95'] or float('nan'):.3f}",
    )  # fmt: skip
    for name, area in report["area_km2"].items():
        if area["estimate"] is not None:
            ci = "n/a" if area["ci95"] is None else f"{area['ci95']:.1f}"
            logger.info(
                "  %s: mapped %.1f km2, estimated %.1f +- %s km2 (95 %% CI)",
                name, area["mapped"], area["estimate"], ci,
            )  # fmt: skip


# --------------------------------------------------------------------------- 3. figure


def plot_assessment(report: Mapping[str, Any]) -> Figure:
    """Error matrix (sample counts, area proportions) beside mapped vs estimated areas with CIs."""
    classes = report["classes"]
    figure = Figure(figsize=(13, 5.5), layout="constrained")
    left, right = figure.subplots(1, 2, width_ratios=[1, 1.15])
    matrix = report["error_matrix"]
    if matrix is None:
        left.text(0.5, 0.5, "no reference chip on a scored chip", ha="center", va="center")
        left.set_axis_off()
    else:
        counts = np.asarray(matrix["counts"], dtype=float)
        proportions = np.array(
            [[np.nan if p is None else p for p in row] for row in matrix["proportions"]]
        )
        shade = np.nan_to_num(proportions)
        left.imshow(shade, cmap="Blues")
        for i in range(len(classes)):
            for j in range(len(classes)):
                p = proportions[i, j]
                text = f"{int(counts[i, j])}" + ("" if np.isnan(p) else f"\n{p:.3f}")
                color = "white" if shade[i, j] > 0.6 * shade.max() else "black"
                left.text(j, i, text, ha="center", va="center", fontsize=8, color=color)
        left.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
        left.set_yticks(range(len(classes)), classes)
        left.set_xlabel("reference class")
        left.set_ylabel("map class (stratum)")
        oa = report["overall_accuracy"]
        title = "Error matrix: sample counts / area proportions"
        if oa:
            oa_ci = "" if oa["ci95"] is None else f" ± {oa['ci95']:.2f}"
            title += f"\noverall accuracy {oa['estimate']:.2f}{oa_ci}"
        left.set_title(title, fontsize=10)

    x = np.arange(len(classes))
    areas = report["area_km2"]
    mapped = [areas[c]["mapped"] for c in classes]
    estimate = [areas[c]["estimate"] or 0.0 for c in classes]
    ci = [areas[c]["ci95"] or 0.0 for c in classes]
    colors = class_colors(classes)
    right.bar(x - 0.2, mapped, 0.4, color=colors, alpha=0.45, label="mapped (chip count)")
    right.bar(
        x + 0.2, estimate, 0.4, yerr=ci, capsize=4, color=colors, edgecolor="black",
        label="estimated (stratified), 95 % CI",
    )  # fmt: skip
    right.set_xticks(x, classes, rotation=45, ha="right")
    right.set_ylabel("area (km²)")
    right.legend(fontsize=8)
    right.set_title(
        f"Class areas of run {report['run_id']}\n{report['n_reference']} reference chips, "
        f"{report['n_unscored']} unscored (not a probability sample)",
        fontsize=10,
    )
    return figure
