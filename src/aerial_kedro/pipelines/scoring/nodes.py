"""Scoring: imagery -> resumable chip predictions -> a georeferenced land-use map.

Nodes, in order:

1. :func:`validate_scoring_params` - the typed settings later nodes read
   (:class:`aerial_kedro.chips.settings.ScoringSettings`); one clear line per bad parameter, before any work.
2. :func:`describe_model` - class order and identity of the trained featurizer + classifier
   (loading them first also fails fast, with "run train first", when they do not exist).
3. :func:`plan_scoring` - list ``score_source``; band files (``*_B04/_B03/_B02``, or
   ``scoring.band_files``) are stacked into one RGB raster; rasters: read their headers (never
   pixels), resolve the radiometric conversion to 8 bits (``scoring.radiometry``) and plan the
   chip grid over their union (:func:`aerial_kedro.geo.chip_planning.plan_chips`; geographic
   sources on their UTM zone, edge chips down to ``1 - max_empty_fraction`` cover); plain
   tiles: list them. Unusable rasters go to ``rejected_rasters``. The plan is cut into chunks
   and named by a run id (:mod:`.planning`, :func:`.planning.plan_source`).
4. :func:`score_chunks` - a generator node: Kedro saves each value it yields to
   ``scoring.predictions`` before asking for the next one. Each value is one Spark job over a
   few chunks (:mod:`.chip_inference`); the dataset writes them with dynamic partition
   overwrite and marks each chunk complete after the commit
   (:mod:`aerial_kedro.datasets.chunked_parquet_dataset`).
5. :func:`collect_map_table` - collects four numbers per chip of the run (the plan holds the
   rest) into the table every map product is drawn from; then one node per product:
   :func:`make_class_raster` (class COG), :func:`make_chips_geojson`, :func:`draw_map_png`,
   :func:`report_class_shares` and :func:`describe_map_products` (the STAC Item of them all);
   :func:`run_predictions` feeds the GeoParquet, which the Spark tasks write. The catalog keeps
   these products in a folder per scored source (``08_reporting/maps/<source name>/``), and
   :func:`index_map_products` records the run in the index of every source mapped.

Resuming: the run id hashes the plan, chunking and model, so running the same scoring again
finds the chunks an interrupted run completed (``scoring.completed_chunks``, the markers of the
same folder) and scores only the others; a chunk rewritten after a crash replaces its partial
files. Every planned chip therefore appears exactly once among the run's completed chunks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from aerial_kedro.blob.urls import redact_url
from aerial_kedro.chip_rows import (
    EMPTY,
    MAP_OUTCOME_COLUMNS,
    PENDING,
    SCORED,
    UNREADABLE,
)
from aerial_kedro.chips.inference import (
    classify,
    classify_items_spark,
    featurize_items_spark,
    plan_frame,
)
from aerial_kedro.chips.planning import (
    describe_problems,
    group_into_jobs,
    make_run_id,
    matched_radiometry,
    pending_chunks,
    plan_source,
    run_identity,
    source_slug,
    task_sizes,
)
from aerial_kedro.chips.records import ModelDescription, RunKind, ScoringRun
from aerial_kedro.chips.settings import ScoringSettings
from aerial_kedro.datasets.chunked_parquet_dataset import PredictionChunks
from aerial_kedro.datasets.spark_ml_model_dataset import loaded_version
from aerial_kedro.featurizers.spec import FeaturizerSpec
from aerial_kedro.geo.class_map import ClassRaster, class_shares
from aerial_kedro.geo.windows import map_cells
from aerial_kedro.models.contract import class_names, classifier_name, predictor
from aerial_kedro.models.linear_head import head_of
from aerial_kedro.pipelines.scoring import maps
from aerial_kedro.spark_inference import task_slots

logger = logging.getLogger(__name__)

# Chunks per Spark job when scoring.chunks_per_job is null, per task slot. A job has a fixed cost
# (~0.5 CPU-s measured: query planning, writer set-up, the commit, the completion markers): with 4
# chunks of 512 chips on 2 slots it was ~0.3 ms of a ~6 ms chip; 16 make it < 0.1 ms. An interrupted
# run loses at most one job (~30 s of work here).
CHUNKS_PER_SLOT = 8


# --------------------------------------------------------------------------- 1. parameters


def validate_scoring_params(
    score_source: Any, scoring: Mapping[str, Any] | None, radiometry_reference: Any = None
) -> ScoringSettings:
    """Check ``score_source``, the ``scoring`` block and ``radiometry_reference`` (a source whose
    pixels the source's are matched to, or null): the typed settings every later node reads.

    Raises :class:`aerial_kedro.errors.ParameterError`, one line naming the first bad key.
    """
    return ScoringSettings.from_params(score_source, scoring, radiometry_reference)


# --------------------------------------------------------------------------- 2. model


def describe_model(
    scoring_model: PipelineModel, featurizer_spec: dict[str, Any], settings: ScoringSettings
) -> ModelDescription:
    """Class order, classifier type, saved version and an identity key of the trained model pair.

    Raises ``ValueError`` when the featurizer's features are not the ones the classifier takes
    (a featurizer saved after the model, e.g. by a featurization-only run).
    """
    spec = FeaturizerSpec.from_dict(featurizer_spec)
    version = loaded_version(scoring_model)
    info = ModelDescription(
        model=settings.model,
        model_version=version,
        classifier=classifier_name(scoring_model),
        classes=tuple(class_names(scoring_model)),
        featurizer=spec.name,
        model_key=f"{scoring_model.uid}|{spec.onnx_sha256}",
    )
    expected = _classifier_input_size(scoring_model)
    if expected is not None and expected != spec.feature_dim:
        raise ValueError(
            f"Model {settings.model} (version {version or 'unversioned'}) takes {expected} "
            f"features but featurizer {spec.name} gives {spec.feature_dim}: the featurizer was "
            "saved by another run; score with the model of that run (scoring.model_version) or "
            "run `train` again"
        )
    logger.info(
        "Scoring with %s version %s (%s, %d classes) on %s features",
        info.model, version or "(unversioned)", info.classifier, len(info.classes),
        spec.name,
    )  # fmt: skip
    return info


def _classifier_input_size(model: PipelineModel) -> int | None:
    """The number of features the fitted classifier takes, when it says (Spark ML models do)."""
    classifier: Any = model.stages[-2]  # any fitted estimator; Spark ML ones have numFeatures
    try:
        return int(classifier.numFeatures)
    except Exception:  # noqa: BLE001 - an estimator without numFeatures is not checked
        return None


# --------------------------------------------------------------------------- 3. plan


def plan_scoring(
    settings: ScoringSettings, model_info: ModelDescription
) -> tuple[pd.DataFrame, ScoringRun, list[dict[str, str]]]:
    """Plan every chip (or tile) to score: ``(plan, run description, rejected rasters)``."""
    source = settings.score_source
    # What is printed, stored in tags and reports, or names the run: never a SAS token.
    public_source = redact_url(source)
    plan, problems, radiometry = plan_source(source, settings.plan)
    kind: RunKind = "tiles" if len(plan) and plan["kind"].iloc[0] == "tile" else "rasters"
    reference, radiometry_fit = settings.radiometry_reference, None
    if reference and radiometry is not None and not plan.empty:
        radiometry, radiometry_fit = matched_radiometry(
            plan, radiometry, reference, settings.plan
        )
        _log_radiometry_fit(redact_url(reference), radiometry_fit)
    inputs = sorted({path for sources in plan["sources"] for path in sources})
    if radiometry is not None and radiometry.name != "none":
        how = "auto: not 8-bit" if settings.radiometry == "auto" else "declared"
        if reference and radiometry_fit and radiometry_fit["applied"]:
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
    if kind == "tiles":
        logger.warning(no_georeference_note(public_source, len(plan)))
    identity = run_identity(plan, settings.plan, model_info.model_key, radiometry)
    run = ScoringRun(
        run_id=make_run_id(public_source, identity),
        source=public_source,
        source_name=source_slug(public_source),
        kind=kind,
        n_items=len(plan),
        n_chunks=int(plan["chunk"].max()) + 1,
        n_inputs=len(inputs),
        n_rejected=len(problems),
        radiometry=radiometry,
        chip_stride_px=settings.chip_stride_px,
        max_empty_fraction=settings.max_empty_fraction,
        radiometry_reference=redact_url(reference) if reference else None,
        radiometry_fit=radiometry_fit,
        # When this run started (UTC): the STAC Item's datetime. Not part of the identity.
        started_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    logger.info(
        "Planned %d %ss from %d %s (%d rejected) in %d chunk(s) of <= %d: run %s",
        len(plan), "chip" if kind == "rasters" else "tile", len(inputs),
        "raster(s)" if kind == "rasters" else "file(s)", len(problems), run.n_chunks,
        settings.chunk_size, run.run_id,
    )  # fmt: skip
    return plan, run, problems


def no_georeference_note(source: str, n_tiles: int) -> str:
    """The one line a run over plain images (no georeference) logs before scoring them."""
    what = "1 plain image" if n_tiles == 1 else f"{n_tiles} plain images"
    return (
        f"score_source '{source}' has no georeference ({what}, scored as tiles): this run "
        "writes class shares and predictions, no map (no class GeoTIFF, no STAC Item; the PNG is "
        "a bar chart of the shares, the GeoJSON has no geometry); for a map give a GeoTIFF/COG"
    )


# --------------------------------------------------------------------------- 4. score


def score_chunks(
    scoring_model: PipelineModel,
    featurizer_onnx: bytes,
    featurizer_spec: dict[str, Any],
    chip_plan: pd.DataFrame,
    scoring_run: ScoringRun,
    completed_chunks: dict[str, list[int]],
    settings: ScoringSettings,
    model_info: ModelDescription,
    head_in_worker: bool = True,
) -> Iterator[PredictionChunks]:
    """Yield the not-yet-completed chunks of the run, a Spark job's worth at a time.

    A linear classifier (:func:`aerial_kedro.models.linear_head.head_of`) is applied inside the
    Python workers, right after the network; any other in the JVM. ``head_in_worker=False``
    keeps every model in the JVM (the benchmarks and tests compare the two).
    """
    run_id, n_chunks = scoring_run.run_id, scoring_run.n_chunks
    done = [] if settings.restart else completed_chunks.get(run_id, [])
    todo = pending_chunks(n_chunks, done, settings.max_chunks)
    spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
    slots, cpus_per_task = task_slots(spark.conf.get, spark.sparkContext.defaultParallelism)
    jobs = group_into_jobs(todo, settings.chunks_per_job or CHUNKS_PER_SLOT * slots)
    logger.info(
        "Run %s: %d chunk(s), %d already complete, scoring %d now in %d Spark job(s)",
        run_id, n_chunks, len(done), len(todo), len(jobs),
    )  # fmt: skip
    if not jobs:
        return
    spec = FeaturizerSpec.from_dict(featurizer_spec)
    onnx_broadcast = spark.sparkContext.broadcast(featurizer_onnx)
    reading = settings.reading(cpus_per_task, scoring_run.radiometry)
    started, items_done = time.perf_counter(), 0
    run_started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    classifier = predictor(scoring_model)
    choice = head_of(classifier)
    head_broadcast = None
    if choice.in_worker and head_in_worker:
        head_broadcast = spark.sparkContext.broadcast(choice.head)
        logger.info("Classifier in the Python workers: %s", choice.reason)
    else:
        why = choice.reason if not choice.in_worker else "head_in_worker=False"
        logger.info("Classifier %s in the JVM (%s)", model_info.classifier, why)
    try:
        for number, job in enumerate(jobs, start=1):
            rows = chip_plan[chip_plan["chunk"].isin(job)]
            sizes = task_sizes(len(rows), slots, settings.tasks_per_slot)
            items = plan_frame(spark, rows, sizes)
            if head_broadcast is not None:
                classified = classify_items_spark(
                    items, onnx_broadcast, head_broadcast, spec, reading,
                    classes=model_info.classes, model_name=model_info.model,
                    featurizer_name=model_info.featurizer,
                )  # fmt: skip
            else:
                featurized = featurize_items_spark(items, onnx_broadcast, spec, reading)
                classified = classify(
                    featurized, classifier, model_info.classes,
                    model_name=model_info.model, featurizer_name=model_info.featurizer,
                )  # fmt: skip
            predictions = classified.withColumn("run_id", F.lit(run_id))
            job_started = time.perf_counter()
            yield PredictionChunks(predictions, run_id, tuple(job), run_started_at)
            elapsed = time.perf_counter() - job_started
            items_done += len(rows)
            logger.info(
                "Job %d/%d: chunks %d-%d, %d items in %.1f s (%.1f items/s, %d tasks)",
                number, len(jobs), job[0], job[-1], len(rows), elapsed,
                len(rows) / max(elapsed, 1e-9), len(sizes),
            )  # fmt: skip
    finally:
        onnx_broadcast.unpersist()
        if head_broadcast is not None:
            head_broadcast.unpersist()
    total = time.perf_counter() - started
    logger.info(
        "Scored %d items in %.1f s: %.1f chips/s on %d task slot(s) x %d thread(s)",
        items_done, total, items_done / max(total, 1e-9), slots, reading.threads,
    )  # fmt: skip
    if settings.max_chunks is not None and len(todo) < n_chunks - len(done):
        logger.warning(
            "Stopped after %d chunk(s) (scoring.max_chunks); run again to score the rest",
            len(todo),
        )


# --------------------------------------------------------------------------- 5. map products
# One node per product, so the pipeline reads as the DAG: the table of the run's chips (or
# cells) is collected once from Spark; each product is then drawn from it on the driver.


def collect_map_table(
    scoring_predictions: DataFrame,
    chip_plan: pd.DataFrame,
    scoring_run: ScoringRun,
    model_info: ModelDescription,
    settings: ScoringSettings,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """``(table, chip counts)``: the plan joined with four numbers per chip of the run's
    completed chunks (every product is drawn from it) and the chips by status.

    With overlapping windows the table holds the map's cells, each the mean of its windows;
    the counts are always of the planned chips.
    """
    run_id = scoring_run.run_id
    grid = settings.grid
    # Overlapping windows are averaged into cells: their probabilities are needed then.
    columns = (*MAP_OUTCOME_COLUMNS, "probabilities") if grid.overlapping else MAP_OUTCOME_COLUMNS
    outcome = scoring_predictions.where(F.col("run_id") == run_id).select(*columns).toPandas()
    table = maps.chip_outcomes(chip_plan, outcome, columns)
    counts = maps.status_counts(table)
    _log_counts(run_id, counts)
    if counts[UNREADABLE]:
        _log_unreadable(scoring_predictions.where(F.col("run_id") == run_id))
    if _in_cells(settings, scoring_run):  # the map products are drawn in cells
        table = map_cells(table, grid, model_info.classes, settings.max_empty_fraction)
    return table, counts


def make_class_raster(
    map_table: pd.DataFrame,
    scoring_run: ScoringRun,
    model_info: ModelDescription,
    settings: ScoringSettings,
) -> tuple[ClassRaster, ClassRaster]:
    """The class raster twice: kept in memory (``class_raster``, read by the map, the report
    and the STAC Item) and saved as the COG (``class_geotiff``).

    Two outputs because the later nodes must not read the COG back: a run over plain tiles has
    no georeference, so its raster is :meth:`ClassRaster.empty` and no file is written.
    """
    classes = model_info.classes
    if scoring_run.is_tiles:
        raster = ClassRaster.empty(classes)
        return raster, raster
    grid = settings.grid
    crs = maps.primary_crs(map_table)
    if map_table["crs"].nunique() > 1:
        logger.warning(
            "Rasters in %d CRSs: the GeoTIFF and PNG show %s; predictions and GeoJSON hold all",
            map_table["crs"].nunique(), crs,
        )  # fmt: skip
    tags = {"run_id": scoring_run.run_id, "source": scoring_run.source,
            "model": model_info.model, "featurizer": model_info.featurizer,
            "chip_size_m": grid.size, "cell_size_m": grid.cell_size}  # fmt: skip
    raster = maps.class_raster(map_table, crs, classes, grid, tags)
    return raster, raster


def make_chips_geojson(map_table: pd.DataFrame, model_info: ModelDescription) -> dict[str, Any]:
    """Scored chips (or cells) as lon/lat polygons with class and confidence (tiles: no geometry)."""
    return maps.chips_geojson(map_table, model_info.classes)


def draw_map_png(
    class_raster: ClassRaster,
    map_table: pd.DataFrame,
    chip_counts: dict[str, int],
    scoring_run: ScoringRun,
    model_info: ModelDescription,
    settings: ScoringSettings,
) -> Figure:
    """The PNG map: classes over the scene (raw and smoothed); tiles: a bar chart of shares."""
    classes = model_info.classes
    title = maps.map_title(scoring_run.source_name, chip_counts, model_info.model)
    if scoring_run.is_tiles:
        return maps.tiles_figure(maps.shares_of_scored(map_table, classes), classes, title)
    return maps.raster_map_figure(
        class_raster,
        maps.smoothed_classes(class_raster) if settings.smoothing else None,
        settings.grid.cell_size,
        title,
        maps.plan_sources(map_table, maps.primary_crs(map_table)),
        settings.bands,
        radiometry=scoring_run.radiometry,
        unit="cell" if _in_cells(settings, scoring_run) else "chip",
    )


def report_class_shares(
    map_table: pd.DataFrame,
    chip_counts: dict[str, int],
    class_raster: ClassRaster,
    scoring_run: ScoringRun,
    model_info: ModelDescription,
    settings: ScoringSettings,
) -> dict[str, Any]:
    """The run's report: chip counts, class shares (raw and smoothed) and the map's grid."""
    classes = model_info.classes
    report: dict[str, Any] = {
        "run_id": scoring_run.run_id,
        "source": scoring_run.source,
        "kind": scoring_run.kind,
        "model": model_info.model,
        "model_version": model_info.model_version,
        "classifier": model_info.classifier,
        "featurizer": model_info.featurizer,
        "classes": list(classes),
        "chips": chip_counts,
        "complete": chip_counts[PENDING] == 0,
        "rejected_rasters": scoring_run.n_rejected,
        "radiometry": scoring_run.radiometry.name if scoring_run.radiometry else None,
        "shares": maps.shares_of_scored(map_table, classes),
        "smoothing": settings.smoothing,
        "shares_smoothed": None,
    }
    if _in_cells(settings, scoring_run):
        report["cells"] = maps.status_counts(map_table)
    if scoring_run.is_tiles:
        return report
    if settings.smoothing:
        report["shares_smoothed"] = class_shares(maps.smoothed_classes(class_raster), classes)
    grid = settings.grid
    report["map"] = {
        "crs": class_raster.crs,
        "transform": list(class_raster.transform)[:6],
        "shape": list(class_raster.classes.shape),
        "chip_size_m": grid.size,
        "cell_size_m": grid.cell_size,
    }
    return report


def describe_map_products(
    class_raster: ClassRaster, scoring_run: ScoringRun, model_info: ModelDescription
) -> dict[str, Any]:
    """The STAC Item of the map products (:func:`.maps.map_stac_item_of_run`), saved beside them.

    A run over plain tiles has no georeferenced map, and a STAC Item must have a footprint: it
    gets a short note instead (not a Feature, so STAC tools refuse it rather than misread it),
    which also replaces the Item of an earlier run at the path, as the class GeoTIFF's removal
    does.
    """
    if not class_raster.is_georeferenced:
        return maps.no_stac_item(scoring_run.run_id)
    properties = {
        "datetime": scoring_run.started_at,
        "aerial:model": model_info.model,
        "aerial:model_version": model_info.model_version,
        "aerial:featurizer": model_info.featurizer,
        "aerial:source": scoring_run.source,  # redacted of SAS tokens by plan_scoring
    }
    return maps.map_stac_item_of_run(class_raster, scoring_run.run_id, properties)


def index_map_products(
    scoring_run: ScoringRun,
    model_info: ModelDescription,
    class_shares_report: dict[str, Any],
    stac_item: dict[str, Any],
) -> dict[str, Any]:
    """The run's entry in the index of mapped sources (the catalog's ``maps/index.json``).

    It reads the saved report and STAC Item, so it runs after the products; the index dataset
    adds the files of the source's folder and logs where they are.
    """
    return {
        "source": scoring_run.source,
        "source_name": scoring_run.source_name,
        "run_id": scoring_run.run_id,
        "kind": scoring_run.kind,
        "georeferenced": not scoring_run.is_tiles and stac_item.get("type") == "Feature",
        "model": model_info.model,
        "model_version": model_info.model_version,
        "featurizer": model_info.featurizer,
        "scored_at": scoring_run.started_at,
        "complete": class_shares_report.get("complete"),
        "chips": class_shares_report.get("chips"),
    }


def _in_cells(settings: ScoringSettings, scoring_run: ScoringRun) -> bool:
    """Overlapping windows of rasters are mapped in cells, each the mean of its windows."""
    return settings.grid.overlapping and not scoring_run.is_tiles


def _log_radiometry_fit(reference: str, fit: dict[str, Any]) -> None:
    if fit["mode"] == "never":
        return
    logger.info(
        "Radiometry %s to %s (%s): contrast %.1f vs %.1f over %d clear pixels at %g m; "
        "gain %s, bias %s",
        "matched" if fit["applied"] else "not matched", reference, fit["mode"], fit["contrast"],
        fit["reference_contrast"], fit["pixels"], fit["resolution_m"], fit["gain"], fit["bias"],
    )  # fmt: skip


def run_predictions(scoring_predictions: DataFrame, scoring_run: ScoringRun) -> DataFrame:
    """The run's prediction rows, for the GeoParquet product (written by the Spark tasks)."""
    return scoring_predictions.where(F.col("run_id") == scoring_run.run_id)


def _log_counts(run_id: str, counts: dict[str, int]) -> None:
    logger.info(
        "Run %s: %d planned = %d scored + %d empty (skipped) + %d unreadable + %d pending",
        run_id, counts["planned"], counts[SCORED], counts[EMPTY], counts[UNREADABLE],
        counts[PENDING],
    )  # fmt: skip


def _log_unreadable(run_predictions: DataFrame, limit: int = 20) -> None:
    unreadable = run_predictions.where(F.col("status") == UNREADABLE).select("chip_id", "reason")
    for row in unreadable.limit(limit).collect():
        logger.warning("Unreadable %s: %s", row["chip_id"], row["reason"])
