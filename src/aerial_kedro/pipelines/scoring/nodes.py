"""Scoring: imagery -> resumable chip predictions -> a georeferenced land-use map.

Nodes, in order:

1. :func:`validate_scoring_params` - one clear line per bad parameter, before any work.
2. :func:`describe_model` - class order and identity of the trained featurizer + classifier
   (loading them first also fails fast, with "run train first", when they do not exist).
3. :func:`plan_scoring` - list ``score_source``; band files (``*_B04/_B03/_B02``, or
   ``scoring.band_files``) are stacked into one RGB raster; rasters: read their headers (never
   pixels), resolve the radiometric conversion to 8 bits (``scoring.radiometry``) and plan the
   chip grid over their union (:func:`aerial_kedro.geo.chip_grid.plan_chips`; geographic
   sources on their UTM zone, edge chips down to ``1 - max_empty_fraction`` cover); plain
   tiles: list them. Unusable rasters go to ``rejected_rasters``. The plan is cut into chunks
   and named by a run id (:mod:`.planning`, :func:`.planning.plan_source`).
4. :func:`score_chunks` - a generator node: Kedro saves each value it yields to
   ``scoring.predictions`` before asking for the next one. Each value is one Spark job over a
   few chunks (:mod:`.chip_inference`); the dataset writes them with dynamic partition
   overwrite and marks each chunk complete after the commit
   (:mod:`aerial_kedro.datasets.chunked_parquet_dataset`).
5. :func:`build_map_products` - collects four numbers per chip of the run and writes the class
   GeoTIFF, GeoJSON, PNG map and class shares.

Resuming: the run id hashes the plan, chunking and model, so running the same scoring again
finds the chunks an interrupted run completed (``scoring.completed_chunks``, the markers of the
same folder) and scores only the others; a chunk rewritten after a crash replaces its partial
files. Every planned chip therefore appears exactly once among the run's completed chunks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from aerial_kedro.blob.urls import redact_url
from aerial_kedro.datasets.chunked_parquet_dataset import PredictionChunks
from aerial_kedro.featurizers.spec import FeaturizerSpec
from aerial_kedro.geo.band_stack import COLOURS
from aerial_kedro.geo.chip_grid import ChipGrid
from aerial_kedro.geo.class_map import ClassRaster, class_shares
from aerial_kedro.geo.radiometry import Radiometry, parse_radiometry
from aerial_kedro.pipelines.modeling.model_contract import class_names, classifier_name, predictor
from aerial_kedro.pipelines.scoring import maps
from aerial_kedro.pipelines.scoring.chip_inference import (
    EMPTY,
    SCORED,
    UNREADABLE,
    classify,
    featurize_items_spark,
)
from aerial_kedro.pipelines.scoring.planning import (
    PLAN_SCHEMA,
    RADIOMETRY_MATCH_MODES,
    SOURCE_KINDS,
    describe_problems,
    group_into_jobs,
    is_gdal_path,
    make_run_id,
    matched_radiometry,
    pending_chunks,
    plan_records,
    plan_source,
    run_identity,
    source_slug,
    task_count,
)
from aerial_kedro.spark_inference import task_slots
from aerial_kedro.validation import ParameterError

logger = logging.getLogger(__name__)

_INT_SETTINGS = ("chip_px", "chunk_size", "batch_size", "tasks_per_slot")
_OPTIONAL_INT_SETTINGS = ("chunks_per_job", "threads_per_task", "max_chunks", "max_chips")
_BOOL_SETTINGS = ("smoothing", "restart", "allow_vrt")


# --------------------------------------------------------------------------- 1. parameters


def validate_scoring_params(
    score_source: Any, scoring: dict[str, Any], radiometry_reference: Any = None
) -> dict[str, Any]:
    """Check ``score_source``, the ``scoring`` block and ``radiometry_reference`` (a source whose
    pixels the source's are matched to, or null); return normalised settings.

    Raises :class:`aerial_kedro.validation.ParameterError` naming the first bad key.
    """
    settings: dict[str, Any] = {"score_source": _check_source(score_source)}
    settings["radiometry_reference"] = (
        None if radiometry_reference in (None, "") else _check_source(radiometry_reference,
                                                                      "radiometry_reference")
    )  # fmt: skip
    settings["model"] = _check_name("scoring.model", scoring.get("model"))
    kind = scoring.get("source_kind", "auto")
    if kind not in SOURCE_KINDS:
        raise ParameterError(
            f"scoring.source_kind: '{kind}' is not allowed; allowed values: {', '.join(SOURCE_KINDS)}"
        )
    settings["source_kind"] = kind
    for key in _INT_SETTINGS:
        settings[key] = _check_int(f"scoring.{key}", scoring.get(key), 1)
    for key in _OPTIONAL_INT_SETTINGS:
        value = scoring.get(key)
        settings[key] = None if value is None else _check_int(f"scoring.{key}", value, 1)
    for key in _BOOL_SETTINGS:
        value = scoring.get(key, False)
        if not isinstance(value, bool):
            raise ParameterError(f"scoring.{key}: '{value}' is not true or false")
        settings[key] = value
    settings["chip_stride_px"] = _check_stride(scoring.get("chip_stride_px"), settings["chip_px"])
    settings["resolution"] = _check_positive("scoring.resolution", scoring.get("resolution"))
    fraction = _check_positive("scoring.max_empty_fraction", scoring.get("max_empty_fraction"))
    if fraction > 1:
        raise ParameterError(f"scoring.max_empty_fraction: {fraction} is outside (0, 1]")
    settings["max_empty_fraction"] = fraction
    settings["bands"] = _check_bands(scoring.get("bands"))
    try:
        radiometry = parse_radiometry(scoring.get("radiometry", "auto"))
    except ValueError as error:
        raise ParameterError(f"scoring.radiometry: {error}") from None
    settings["radiometry"] = radiometry if isinstance(radiometry, str) else radiometry.to_dict()
    settings["band_files"] = _check_band_files(scoring.get("band_files"))
    match = scoring.get("radiometry_match", "when_hazier")
    if match not in RADIOMETRY_MATCH_MODES:
        raise ParameterError(f"scoring.radiometry_match: '{match}' is not allowed; allowed "
                             f"values: {', '.join(RADIOMETRY_MATCH_MODES)}")  # fmt: skip
    settings["radiometry_match"] = match
    return settings


def _check_stride(value: Any, chip_px: int) -> int | None:
    """``scoring.chip_stride_px``: null or ``chip_px`` = chips side by side; a divisor of
    ``chip_px`` = overlapping windows, the map drawn in cells of that many pixels."""
    if value is None or value == chip_px:
        return None
    stride = _check_int("scoring.chip_stride_px", value, 1)
    if chip_px % stride:
        raise ParameterError(
            f"scoring.chip_stride_px: {stride} does not divide scoring.chip_px {chip_px} "
            f"(e.g. {chip_px // 2} for half a chip)"
        )
    return stride


def _check_band_files(value: Any) -> dict[str, str] | None:
    if value is None or value == {}:
        return None
    if (
        not isinstance(value, dict)
        or set(value) != set(COLOURS)
        or not all(isinstance(path, str) and path for path in value.values())
    ):
        raise ParameterError(
            f"scoring.band_files: '{value}' is not a mapping {{red: path, green: path, blue: path}}"
        )
    return dict(value)


def _check_source(source: Any, key: str = "score_source") -> str:
    if not source or not isinstance(source, str):
        raise ParameterError(
            f"{key}: not set; pass --params={key}=PATH "
            "(a raster, a folder of rasters or a folder of tiles)"
        )
    if "://" not in source and not is_gdal_path(source) and not Path(source).exists():
        raise ParameterError(f"{key}: '{source}' does not exist")
    return source


def _check_name(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ParameterError(f"{key}: '{value}' is not a model name (e.g. logistic_regression)")
    return value


def _check_int(key: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ParameterError(f"{key}: '{value}' is not an integer >= {minimum}")
    return value


def _check_positive(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ParameterError(f"{key}: '{value}' is not a positive number")
    return float(value)


def _check_bands(value: Any) -> list[int]:
    if (
        not isinstance(value, list | tuple)
        or len(value) != 3
        or not all(isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in value)
    ):
        raise ParameterError(
            f"scoring.bands: '{value}' is not three 1-based band numbers (R, G, B)"
        )
    return list(value)


# --------------------------------------------------------------------------- 2. model


def describe_model(
    scoring_model: PipelineModel, featurizer_spec: dict[str, Any], settings: dict[str, Any]
) -> dict[str, Any]:
    """Class order, classifier type and an identity key of the trained model pair."""
    spec = FeaturizerSpec.from_dict(featurizer_spec)
    info = {
        "model": settings["model"],
        "classifier": classifier_name(scoring_model),
        "classes": class_names(scoring_model),
        "featurizer": spec.name,
        "model_key": f"{scoring_model.uid}|{spec.onnx_sha256}",
    }
    logger.info(
        "Scoring with %s (%s, %d classes) on %s features",
        info["model"], info["classifier"], len(info["classes"]), spec.name,
    )  # fmt: skip
    return info


# --------------------------------------------------------------------------- 3. plan


def plan_scoring(
    settings: dict[str, Any], model_info: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any], list[dict[str, str]]]:
    """Plan every chip (or tile) to score: ``(plan, run description, rejected rasters)``."""
    source = settings["score_source"]
    # What is printed, stored in tags and reports, or names the run: never a SAS token.
    public_source = redact_url(source)
    radiometry_param = settings.get("radiometry", "auto")
    plan, problems, radiometry = plan_source(source, settings)
    kind = "tiles" if len(plan) and plan["kind"].iloc[0] == "tile" else "rasters"
    reference, radiometry_fit = settings.get("radiometry_reference"), None
    if reference and radiometry is not None and not plan.empty:
        radiometry, radiometry_fit = matched_radiometry(plan, radiometry, reference, settings)
        _log_radiometry_fit(redact_url(reference), radiometry_fit)
    inputs = sorted({path for sources in plan["sources"] for path in sources})
    if radiometry is not None and radiometry.name != "none":
        how = "auto: not 8-bit" if radiometry_param == "auto" else "declared"
        if radiometry_fit and radiometry_fit["applied"]:
            how = f"matched to {redact_url(reference)}"
        logger.info(
            "Radiometry %s (%s): 8-bit = clip((DN x %g %+g - min) / (max - min) x 255), "
            "min %s, max %s",
            radiometry.name, how, radiometry.scale, radiometry.offset, list(radiometry.min),
            list(radiometry.max),
        )  # fmt: skip
    for problem in problems:
        logger.warning("Rejected raster %s: %s", problem["path"], problem["reason"])
    if plan.empty:
        detail = f": {describe_problems(problems)}" if problems else ""
        raise ValueError(f"score_source '{public_source}': nothing to score{detail}")
    identity = run_identity(plan, settings, model_info["model_key"], radiometry)
    run = {
        "run_id": make_run_id(public_source, identity),
        "source": public_source,
        "source_name": source_slug(public_source),
        "kind": kind,
        "n_items": len(plan),
        "n_chunks": int(plan["chunk"].max()) + 1,
        "n_inputs": len(inputs),
        "n_rejected": len(problems),
        "radiometry": None if radiometry is None else radiometry.to_dict(),
        "chip_stride_px": settings.get("chip_stride_px"),
        "max_empty_fraction": settings["max_empty_fraction"],
        "radiometry_reference": redact_url(reference) if reference else None,
        "radiometry_fit": radiometry_fit,
    }
    logger.info(
        "Planned %d %ss from %d %s (%d rejected) in %d chunk(s) of <= %d: run %s",
        len(plan), "chip" if kind == "rasters" else "tile", len(inputs),
        "raster(s)" if kind == "rasters" else "file(s)", len(problems), run["n_chunks"],
        settings["chunk_size"], run["run_id"],
    )  # fmt: skip
    return plan, run, problems


# --------------------------------------------------------------------------- 4. score


def score_chunks(
    scoring_model: PipelineModel,
    featurizer_onnx: bytes,
    featurizer_spec: dict[str, Any],
    chip_plan: pd.DataFrame,
    scoring_run: dict[str, Any],
    completed_chunks: dict[str, list[int]],
    settings: dict[str, Any],
    model_info: dict[str, Any],
) -> Iterator[PredictionChunks]:
    """Yield the not-yet-completed chunks of the run, a Spark job's worth at a time."""
    run_id = scoring_run["run_id"]
    done = [] if settings["restart"] else completed_chunks.get(run_id, [])
    todo = pending_chunks(scoring_run["n_chunks"], done, settings["max_chunks"])
    spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
    slots, cpus_per_task = task_slots(spark.conf.get, spark.sparkContext.defaultParallelism)
    jobs = group_into_jobs(todo, settings["chunks_per_job"] or 2 * slots)
    logger.info(
        "Run %s: %d chunk(s), %d already complete, scoring %d now in %d Spark job(s)",
        run_id, scoring_run["n_chunks"], len(done), len(todo), len(jobs),
    )  # fmt: skip
    if not jobs:
        return
    spec = FeaturizerSpec.from_dict(featurizer_spec)
    onnx_broadcast = spark.sparkContext.broadcast(featurizer_onnx)
    threads = settings["threads_per_task"] or cpus_per_task
    started, items_done = time.perf_counter(), 0
    run_started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    classifier = predictor(scoring_model)
    try:
        for number, job in enumerate(jobs, start=1):
            rows = chip_plan[chip_plan["chunk"].isin(job)]
            n_tasks = task_count(len(rows), slots, settings["tasks_per_slot"])
            items = spark.createDataFrame(
                spark.sparkContext.parallelize(plan_records(rows), n_tasks), PLAN_SCHEMA
            )
            featurized = featurize_items_spark(
                items,
                onnx_broadcast,
                spec,
                batch_size=settings["batch_size"],
                threads=threads,
                max_empty_fraction=settings["max_empty_fraction"],
                bands=settings["bands"],
                radiometry=scoring_run.get("radiometry"),
            )
            predictions = classify(
                featurized,
                classifier,
                model_info["classes"],
                model_name=model_info["model"],
                featurizer_name=model_info["featurizer"],
            ).withColumn("run_id", F.lit(run_id))
            job_started = time.perf_counter()
            yield PredictionChunks(predictions, run_id, tuple(job), run_started_at)
            elapsed = time.perf_counter() - job_started
            items_done += len(rows)
            logger.info(
                "Job %d/%d: chunks %d-%d, %d items in %.1f s (%.1f items/s, %d tasks)",
                number, len(jobs), job[0], job[-1], len(rows), elapsed,
                len(rows) / max(elapsed, 1e-9), n_tasks,
            )  # fmt: skip
    finally:
        onnx_broadcast.unpersist()
    total = time.perf_counter() - started
    logger.info(
        "Scored %d items in %.1f s: %.1f chips/s on %d task slot(s) x %d thread(s)",
        items_done, total, items_done / max(total, 1e-9), slots, threads,
    )  # fmt: skip
    if settings["max_chunks"] is not None and len(todo) < scoring_run["n_chunks"] - len(done):
        logger.warning(
            "Stopped after %d chunk(s) (scoring.max_chunks); run again to score the rest",
            len(todo),
        )


# --------------------------------------------------------------------------- 5. products


def build_map_products(
    scoring_predictions: DataFrame,
    chip_plan: pd.DataFrame,
    scoring_run: dict[str, Any],
    model_info: dict[str, Any],
    settings: dict[str, Any],
) -> tuple[ClassRaster, dict[str, Any], Figure, dict[str, Any]]:
    """Class GeoTIFF, GeoJSON, PNG map and class shares of the run's completed chunks."""
    run_id = scoring_run["run_id"]
    grid = ChipGrid(settings["chip_px"], settings["resolution"], settings.get("chip_stride_px"))
    # Overlapping windows are averaged into cells: their probabilities are needed then.
    columns = (*maps.OUTCOME_COLUMNS, "probabilities") if grid.overlapping else maps.OUTCOME_COLUMNS
    outcome = scoring_predictions.where(F.col("run_id") == run_id).select(*columns).toPandas()
    table = maps.chip_outcomes(chip_plan, outcome, columns)
    counts = maps.status_counts(table)
    _log_counts(run_id, counts)
    if counts[UNREADABLE]:
        _log_unreadable(scoring_predictions.where(F.col("run_id") == run_id))
    classes = model_info["classes"]
    title = maps.map_title(scoring_run["source_name"], counts, model_info["model"])
    in_cells = grid.overlapping and scoring_run["kind"] != "tiles"
    if in_cells:  # the map products are drawn in cells, each the mean of its windows
        table = maps.window_cells(table, grid, classes, settings["max_empty_fraction"])
    shares = maps.shares_of_scored(table, classes)
    report: dict[str, Any] = {
        "run_id": run_id,
        "source": scoring_run["source"],
        "kind": scoring_run["kind"],
        "model": model_info["model"],
        "classifier": model_info["classifier"],
        "featurizer": model_info["featurizer"],
        "classes": classes,
        "chips": counts,
        "complete": counts[maps.PENDING] == 0,
        "rejected_rasters": scoring_run["n_rejected"],
        "radiometry": (scoring_run.get("radiometry") or {}).get("name"),
        "shares": shares,
        "smoothing": settings["smoothing"],
        "shares_smoothed": None,
    }
    if in_cells:
        report["cells"] = maps.status_counts(table)
    if scoring_run["kind"] == "tiles":
        raster = ClassRaster.empty(classes)
        return (
            raster,
            maps.chips_geojson(table, classes),
            maps.tiles_figure(shares, classes, title),
            report,
        )

    crs = maps.primary_crs(table)
    if table["crs"].nunique() > 1:
        logger.warning(
            "Rasters in %d CRSs: the GeoTIFF and PNG show %s; predictions and GeoJSON hold all",
            table["crs"].nunique(), crs,
        )  # fmt: skip
    tags = {"run_id": run_id, "source": scoring_run["source"], "model": model_info["model"],
            "featurizer": model_info["featurizer"], "chip_size_m": grid.size,
            "cell_size_m": grid.cell_size}  # fmt: skip
    raster = maps.class_raster(table, crs, classes, grid, tags)
    smoothed = maps.smoothed_classes(raster) if settings["smoothing"] else None
    if smoothed is not None:
        report["shares_smoothed"] = class_shares(smoothed, classes)
    report["map"] = {
        "crs": crs,
        "transform": list(raster.transform)[:6],
        "shape": list(raster.classes.shape),
        "chip_size_m": grid.size,
        "cell_size_m": grid.cell_size,
    }
    radiometry = scoring_run.get("radiometry")
    figure = maps.raster_map_figure(
        raster, smoothed, grid.cell_size, title, maps.plan_sources(table, crs), settings["bands"],
        radiometry=Radiometry.from_dict(radiometry) if radiometry else None,
    )  # fmt: skip
    return raster, maps.chips_geojson(table, classes), figure, report


def _log_radiometry_fit(reference: str, fit: dict[str, Any]) -> None:
    if fit["mode"] == "never":
        return
    logger.info(
        "Radiometry %s to %s (%s): contrast %.1f vs %.1f over %d clear pixels at %g m; "
        "gain %s, bias %s",
        "matched" if fit["applied"] else "not matched", reference, fit["mode"], fit["contrast"],
        fit["reference_contrast"], fit["pixels"], fit["resolution_m"], fit["gain"], fit["bias"],
    )  # fmt: skip


def run_predictions(scoring_predictions: DataFrame, scoring_run: dict[str, Any]) -> DataFrame:
    """The run's prediction rows, for the GeoParquet product (written by the Spark tasks)."""
    return scoring_predictions.where(F.col("run_id") == scoring_run["run_id"])


def _log_counts(run_id: str, counts: dict[str, int]) -> None:
    logger.info(
        "Run %s: %d planned = %d scored + %d empty (skipped) + %d unreadable + %d pending",
        run_id, counts["planned"], counts[SCORED], counts[EMPTY], counts[UNREADABLE],
        counts[maps.PENDING],
    )  # fmt: skip


def _log_unreadable(run_predictions: DataFrame, limit: int = 20) -> None:
    unreadable = run_predictions.where(F.col("status") == UNREADABLE).select("chip_id", "reason")
    for row in unreadable.limit(limit).collect():
        logger.warning("Unreadable %s: %s", row["chip_id"], row["reason"])
