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

Labels that carry ``chip_id`` and ``stratum`` are the chips `sample` drew from this map
(``sample_design.geojson`` with ``class`` filled in, :mod:`aerial_kedro.assessment.design`):
:func:`assess_design_sample` assesses them as the probability sample they are. Its strata are
the design's (chips mapped per class when it was drawn, from ``sample_design.json`` beside the
map, which must come from the same scoring run), each labelled chip counts once by its id,
drawn chips left unlabelled are non-response, and training chips leave sample and population.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from pyproj import CRS
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from aerial_kedro.assessment.design import (
    DESIGN_FILE,
    DesignLabels,
    DrawnSample,
    SampleDesignError,
    check_against_design,
    design_labels,
    drawn_chips,
    is_design_table,
)
from aerial_kedro.assessment.olofsson import (
    AccuracyAssessment,
    assess_accuracy,
    assess_strata,
    error_matrix,
)
from aerial_kedro.chip_rows import SCORED
from aerial_kedro.chips.records import ModelDescription, ScoringRun
from aerial_kedro.chips.settings import ScoringSettings
from aerial_kedro.datasets.map_products import source_folder_name
from aerial_kedro.geo.grid import ChipGrid
from aerial_kedro.geo.label_chips import REJECTED_COLUMNS, label_planned_chips
from aerial_kedro.geo.label_files import normalise_labels, read_label_table
from aerial_kedro.geo.palette import class_colors
from aerial_kedro.pipelines.assess.settings import AssessSettings

logger = logging.getLogger(__name__)

SAMPLING_NOTE = (
    "Hand-picked reference chips are not a probability sample. These estimates assume the "
    "reference chips of each map class are a simple random sample of that class (stratified "
    "random sampling, map classes as strata, Olofsson et al. 2014); where they were chosen for "
    "being easy to label, accuracies are optimistic and the confidence intervals too narrow."
)
HAND_PICKED = "not a probability sample"
PROBABILITY_SAMPLE = "probability sample"
DESIGN_NOTE = (
    "Probability sample: the reference chips are the stratified random sample `sample` drew "
    "from this map (strata = mapped classes; each chip of stratum h drawn with probability "
    "n_h / N_h, N_h = chips the stratum had when the sample was drawn). Estimates after "
    "Olofsson et al. 2014 with the design's stratum weights, strata kept apart when classes "
    "are grouped, and the finite population correction 1 - n_h / N_h."
)
NOT_LABELLED = "not labelled"
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


@dataclass(frozen=True)
class ScoredMap:
    """What assess reads of the scoring run it assesses and of the model that made the map."""

    run_id: str
    source: str
    kind: str
    model: str | None
    featurizer: str | None
    classes: tuple[str, ...]

    @classmethod
    def of(cls, scoring_run: ScoringRun, model_info: ModelDescription | None) -> ScoredMap:
        """From ``scoring.run`` and ``scoring.model_info`` (None: no model described)."""
        return cls(
            run_id=scoring_run.run_id,
            source=scoring_run.source,
            kind=scoring_run.kind,
            model=model_info.model if model_info else None,
            featurizer=model_info.featurizer if model_info else None,
            classes=model_info.classes if model_info else (),
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
) -> tuple[AssessSettings, gpd.GeoDataFrame | DesignLabels]:
    """Check the parameters and read the labels, before any Spark work: ``(settings, labels)``;
    the labels of a sample design's chips come as :class:`DesignLabels`."""
    settings = validate_assess_params(
        reference_labels, reference_class_field, min_cover, assess, reference_layer
    )
    table = read_label_table(settings.reference_labels, layer=settings.layer)
    if settings.use_sample_design and is_design_table(table.columns):
        design = design_labels(table, settings.reference_labels, settings.class_field)
        logger.info(
            "Reference labels %s: the chips of a sample design (chip_id, stratum), %d of %d "
            "labelled, classes %s",
            settings.reference_labels, len(design.labelled), len(design.chips),
            design.labelled["label"].value_counts().to_dict(),
        )  # fmt: skip
        return settings, design
    labels = normalise_labels(table, settings.reference_labels, settings.class_field)
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
    scoring_run: ScoringRun,
    scoring_settings: ScoringSettings,
    model_info: ModelDescription | None,
    labels: gpd.GeoDataFrame | DesignLabels,
    training_chips: Any,
    settings: AssessSettings,
    sample_design: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """``(accuracy report, reference chips table, rejected labels, MLflow metrics)`` of the run.

    ``sample_design`` is the ``sample_design.json`` beside the map (None when there is none),
    read only when ``labels`` are a design's chips (:func:`assess_design_sample`)."""
    scored = ScoredMap.of(scoring_run, model_info)
    if scored.kind != "rasters":
        raise ValueError(
            f"score_source '{scored.source}' is plain tiles without georeference; "
            "assess needs a scored raster source"
        )
    if isinstance(labels, DesignLabels):
        return assess_design_sample(
            predictions, chip_plan, scored, scoring_settings, labels, training_chips, settings,
            sample_design,
        )  # fmt: skip
    run_id = scored.run_id
    model_classes = list(scored.classes)
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
        context=report_context(
            scored, settings, scheme, mapping, grid, chip_km2, len(labels), settings.min_cover
        ),
    )
    _log_headline(report)
    reference_chips = table.assign(label_ids=table["label_ids"].map(_ids_text))
    reference_chips = reference_chips[list(REFERENCE_CHIP_COLUMNS)]
    rejected = rejected.astype({"label_id": str})[list(REJECTED_COLUMNS)]
    return report, reference_chips, rejected, mlflow_metrics(report)


def report_context(
    scored: ScoredMap,
    settings: AssessSettings,
    scheme: str,
    mapping: Mapping[str, str],
    grid: ChipGrid,
    chip_km2: float,
    n_labels: int,
    min_cover: float | None = None,
) -> dict[str, Any]:
    """The report's keys saying what was assessed against what, in the report's order.

    ``min_cover`` is given for hand-picked labels only: a design's chips are labelled by id."""
    context: dict[str, Any] = {
        "run_id": scored.run_id,
        "score_source": scored.source,
        "model": scored.model,
        "featurizer": scored.featurizer,
        "reference_labels": settings.reference_labels,
        "class_field": settings.class_field,
    }
    if min_cover is not None:
        context["min_cover"] = min_cover
    return {
        **context,
        "class_scheme": scheme,
        "class_mapping": {k: v for k, v in mapping.items() if k != v},
        "chip_size_m": grid.size,
        "chip_area_km2": chip_km2,
        "n_labels": n_labels,
    }


def recorded_design(
    summary: Mapping[str, Any] | None, labels: DesignLabels, scored: ScoredMap
) -> tuple[DrawnSample, str]:
    """``(the design, where it lies)`` for design labels on this run's map; one line when there
    is none beside the map or it was drawn from another scoring run."""
    where = f"maps/{source_folder_name(scored.source)}/{DESIGN_FILE}"
    if summary is None:
        raise SampleDesignError(
            f"reference labels '{labels.source}' carry chip_id and stratum (the chips of a sample "
            f"design) but no {where} lies beside the map of score_source "
            f"'{scored.source}'; run `kedro run --pipelines=sample` on that source, or "
            "set assess.use_sample_design=false to assess them as hand-picked labels"
        )
    design = DrawnSample.from_summary(summary, where)
    if design.run_id != scored.run_id:
        raise SampleDesignError(
            f"{where} was drawn from scoring run {design.run_id}, but the map is now run "
            f"{scored.run_id}: its strata are not this map's classes. Draw and label a "
            "new sample of this run, or set assess.use_sample_design=false to assess the labels "
            "as hand-picked"
        )
    return design, where


def training_chips_per_stratum(
    predictions: DataFrame, run_id: str, chip_ids: Sequence[str]
) -> dict[str, int]:
    """Chips `train` learned from, per class the run mapped them as (scored chips only)."""
    if not chip_ids:
        return {}
    rows = reference_chip_outcomes(predictions, run_id, chip_ids)
    scored = rows[rows["status"] == SCORED]
    return {str(k): int(v) for k, v in scored["predicted_label"].value_counts().items()}


def assess_design_sample(
    predictions: DataFrame,
    chip_plan: pd.DataFrame,
    scored: ScoredMap,
    scoring_settings: ScoringSettings,
    labels: DesignLabels,
    training_chips: Any,
    settings: AssessSettings,
    sample_design: Mapping[str, Any] | None,
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """:func:`assess_map` for the labels of a sample design's chips: a probability sample.

    Strata and their sizes N_h are the design's; each drawn chip is one sample by its id. A
    drawn chip without a label is non-response: the estimates use the labelled chips of its
    stratum (n_h = labelled chips), assuming the others missing at random within it. A chip
    `train` learned from leaves the sample and the population alike (N_h less the stratum's
    training chips, their area unassessed): the labelled chips outside training are a simple
    random sample of the stratum's chips outside training, so the estimates stay unbiased for
    the map outside the chips the model has seen.
    """
    run_id = scored.run_id
    design, where = recorded_design(sample_design, labels, scored)
    check_against_design(labels, design, where)
    model_classes = list(scored.classes)
    chips = drawn_chips(labels, design)
    labelled = chips[chips["label"].notna()]
    scheme, mapping = class_mapping(
        sorted(set(design.strata) | set(model_classes)),
        sorted(labelled["label"].unique()),
        settings.class_scheme,
    )
    outcomes = reference_chip_outcomes(predictions, run_id, chips["chip_id"].tolist())
    chips = chips.merge(outcomes, on="chip_id", how="left")
    moved = chips[(chips["status"] != SCORED) | (chips["predicted_label"] != chips["stratum"])]
    if len(moved):
        chip = moved.iloc[0]
        raise SampleDesignError(
            f"{where}: chip {chip['chip_id']} was drawn in stratum '{chip['stratum']}' but run "
            f"{run_id} has it {chip['status']} as '{chip['predicted_label']}': the design does "
            "not describe this map"
        )
    excluded = training_chip_ids(training_chips) if settings.exclude_training_chips else set()
    training = training_chips_per_stratum(predictions, run_id, sorted(excluded))
    chips["use"] = np.select(
        [chips["chip_id"].isin(excluded), chips["label"].isna()],
        ["training", NOT_LABELLED],
        default="reference",
    )
    chips["reference_class"] = chips["label"].map(lambda c: mapping[c] if c else None)
    chips["map_class"] = chips["stratum"].map(mapping)

    strata = sorted(design.strata)
    used = chips[chips["use"] == "reference"]
    classes = sorted({mapping[h] for h in strata} | set(used["reference_class"]))
    counts = np.zeros((len(strata), len(classes)), dtype=np.int64)
    for stratum, reference in zip(used["stratum"], used["reference_class"], strict=True):
        counts[strata.index(stratum), classes.index(reference)] += 1
    outside_training = [design.strata[h] - training.get(h, 0) for h in strata]
    grid = scoring_settings.plan.tiled_grid
    chip_km2 = chip_area_km2(chip_plan["crs"].dropna().iloc[0], grid)
    assessment = None
    if len(used):
        assessment = assess_strata(
            counts,
            [n * chip_km2 for n in outside_training],
            [mapping[h] for h in strata],
            classes,
            strata=strata,
            units=outside_training,
        )
    mapped_km2: dict[str, float] = {}
    for stratum, size in design.strata.items():
        mapped_km2[mapping[stratum]] = mapped_km2.get(mapping[stratum], 0.0) + size * chip_km2
    tally = design_tally(chips, design, training)
    table = chips.assign(label_ids="").merge(
        chip_plan[["chip_id", "row", "col"]].drop_duplicates("chip_id"), on="chip_id", how="left"
    )
    report = accuracy_report(
        assessment,
        classes=classes,
        mapped_km2=mapped_km2,
        table=table,
        rejected=pd.DataFrame(columns=list(REJECTED_COLUMNS)),
        context={
            **report_context(scored, settings, scheme, mapping, grid, chip_km2, len(labels.chips)),
            "sample_design": {"file": where, "seed": design.seed, **tally},
        },
        sampling=PROBABILITY_SAMPLE,
        note=design_note(tally),
        unassessed_km2=sum(training.get(h, 0) for h in strata) * chip_km2,
    )
    _log_design(report)
    _log_headline(report)
    reference_chips = table[list(REFERENCE_CHIP_COLUMNS)]
    rejected = pd.DataFrame(columns=list(REJECTED_COLUMNS))
    return report, reference_chips, rejected, mlflow_metrics(report)


def design_tally(
    chips: pd.DataFrame, design: DrawnSample, training: Mapping[str, int]
) -> dict[str, Any]:
    """Per stratum: chips mapped (N_h), drawn (n_h), inclusion probability, labelled and used,
    not labelled (non-response), drawn training chips, and training chips of the stratum."""
    strata = {}
    for stratum in sorted(design.strata):
        use = chips.loc[chips["stratum"] == stratum, "use"].value_counts()
        strata[stratum] = {
            "mapped_chips": design.strata[stratum],
            "drawn": design.n_per_stratum[stratum],
            "inclusion_probability": design.inclusion_probability(stratum),
            "labelled": int(use.get("reference", 0)),
            "not_labelled": int(use.get(NOT_LABELLED, 0)),
            "training_drawn": int(use.get("training", 0)),
            "training_chips": int(training.get(stratum, 0)),
        }
    return {
        "design_run_id": design.run_id,
        "n_drawn": len(chips),
        "n_labelled": int((chips["use"] == "reference").sum()),
        "n_not_labelled": int((chips["use"] == NOT_LABELLED).sum()),
        "non_response": {h: row["not_labelled"] for h, row in strata.items()},
        "strata": strata,
    }


def design_note(tally: Mapping[str, Any]) -> str:
    """The report's note for a design sample: what it is, and what was left out and how."""
    note = DESIGN_NOTE
    if tally["n_not_labelled"]:
        note += (
            f" {tally['n_not_labelled']} of {tally['n_drawn']} drawn chips were not labelled "
            "(non-response, per stratum in sample_design.non_response): each stratum is "
            "estimated from its labelled chips, assuming the unlabelled ones are missing at "
            "random within it."
        )
    training = sum(s["training_chips"] for s in tally["strata"].values())
    if training:
        note += (
            f" {training} chips `train` learned from are left out of sample and population "
            "alike (N_h less them; their area is unassessed): the estimates describe the map "
            "outside them."
        )
    return note


def _log_design(report: Mapping[str, Any]) -> None:
    design = report["sample_design"]
    logger.info(
        "Reference chips are a probability sample: %d of the %d chips `sample` drew from run %s "
        "(seed %d) labelled; non-response per stratum %s",
        design["n_labelled"], design["n_drawn"], design["design_run_id"], design["seed"],
        {k: v for k, v in design["non_response"].items() if v} or "none",
    )  # fmt: skip


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
    sampling: str = HAND_PICKED,
    note: str = SAMPLING_NOTE,
    unassessed_km2: float = 0.0,
) -> dict[str, Any]:
    """The JSON report: headline keys first, then the error matrix, counts and context.

    ``sampling`` says whether the reference chips are a probability sample (``note`` why);
    ``unassessed_km2`` is mapped area left out of the population besides unsampled strata."""
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
        "sampling": sampling,
        "note": note,
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
            "mapped": mapped_km2.get(c, 0.0),
        }
        for c, value in data["area"].items()
    }
    report["error_matrix"] = {**data["error_matrix"], "classes": list(classes)}
    report["unassessed_area_km2"] = data["unassessed_area"] + unassessed_km2
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
        f"Class areas of run {report['run_id']}\n{_sample_caption(report)}", fontsize=10
    )
    return figure


def _sample_caption(report: Mapping[str, Any]) -> str:
    design = report.get("sample_design")
    if report.get("sampling") != PROBABILITY_SAMPLE or not design:
        return (
            f"{report['n_reference']} reference chips, {report['n_unscored']} unscored "
            "(not a probability sample)"
        )
    return (
        f"{report['n_reference']} reference chips of a probability sample "
        f"({design['n_not_labelled']} of {design['n_drawn']} drawn not labelled)"
    )
