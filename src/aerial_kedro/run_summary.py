"""The end of every ``kedro run`` in a dozen lines: what it wrote and where, the headline figures,
the MLflow run.

    Run summary: score finished in 1m04s
      chips: 118 scored of 124 planned (6 empty); shares: AnnualCrop 34 %, Forest 21 %, ...
      map        /home/me/aerial/data/08_reporting/scoring/land_use_map.png
      class COG  /home/me/aerial/data/08_reporting/scoring/land_use_classes.tif
      written    /home/me/aerial/data/08_reporting/scoring/: class_shares.json, land_use_chips.geojson, ...
                 /home/me/aerial/data/07_model_output/scoring/predictions
      MLflow run 3f2a... (experiment aerial_kedro, sqlite:////home/me/aerial/mlflow.db)

:class:`RunSummaryHooks` records every dataset a node saves (``after_dataset_saved``) with its
location from the catalog (``_describe()``'s ``filepath``; the saved version of a versioned
dataset; the inner dataset of a wrapper) and keeps the small report dicts it knows by name
(``metrics_summary``, ``<model>.metrics``, ``[<date>.]scoring.class_shares``,
``assessment.accuracy``, ``change.transitions``, ``change.detection_metrics``), as RunTrackingHooks
do: renaming or moving a node keeps its summary. Nothing is read back from storage.

Datasets without a location (in-memory, MLflow metrics) are not listed; a local file the save did
not create (a class COG of a run over plain tiles) is left out.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import PurePath
from typing import Any

from kedro.framework.hooks import hook_impl

from aerial_kedro.blob.urls import redact_url
from aerial_kedro.progress import format_duration

logger = logging.getLogger(__name__)

METRICS_SUMMARY = "metrics_summary"
MODEL_METRICS = ".metrics"  # <model>.metrics
CLASS_SHARES = "scoring.class_shares"  # [<date>.]scoring.class_shares
ASSESSMENT = "assessment.accuracy"
TRANSITIONS = "change.transitions"
DETECTION = "change.detection_metrics"

# The products a person opens first, by dataset name: each gets a line of its own with its path.
KEY_PRODUCTS: dict[str, str] = {
    METRICS_SUMMARY: "metrics",
    "scoring.map_png": "map",
    "scoring.class_geotiff": "class COG",
    ASSESSMENT: "accuracy",
    "change.change_png": "change map",
    "change.change_geotiff": "change COG",
}
MAX_FOLDER_LINES = 7  # folders of other products; more are counted on one line
MAX_SHARES = 4  # classes named in a shares line; the rest are summed
_LAYER = re.compile(r"/0(\d)_[^/]+")  # Kedro's data layer folders: 01_raw ... 08_reporting


# --------------------------------------------------------------------------- where datasets live


def dataset_location(dataset: Any) -> str | None:
    """Where ``dataset`` keeps its data (an absolute path or a URL, credentials redacted); None
    for datasets without one (in memory, MLflow metrics)."""
    if dataset is None:
        return None
    try:
        description = dataset._describe() or {}
    except Exception:  # noqa: BLE001 - a dataset that cannot describe itself is simply not listed
        return None
    inner = description.get("dataset")
    if "filepath" not in description and isinstance(inner, Mapping):  # OptionalDataset & co.
        description = inner
    filepath = description.get("filepath")
    if filepath is None or str(filepath) == "":
        return None
    filepath = _saved_version(dataset) or filepath
    location = str(filepath) if isinstance(filepath, str) else PurePath(filepath).as_posix()
    protocol = str(description.get("protocol") or "file")
    if protocol not in ("file", "local") and "://" not in location:
        location = f"{protocol}://{location}"
    return redact_url(location)


def _saved_version(dataset: Any) -> Any:
    """The path of the version just saved, for a versioned Kedro dataset; else None."""
    if getattr(dataset, "_version", None) is None:
        return None
    try:
        return dataset._get_versioned_path(dataset.resolve_save_version())
    except Exception:  # noqa: BLE001 - fall back to the unversioned filepath
        return None


def _is_local(location: str) -> bool:
    return "://" not in location or location.startswith("file://")


def _local_path(location: str) -> str:
    return location[len("file://") :] if location.startswith("file://") else location


def layer_rank(location: str) -> int:
    """08_reporting first, then models, model output ... raw; paths outside the layers last."""
    match = _LAYER.search(location)
    return -int(match.group(1)) if match else 0


def folder_lines(locations: Iterable[str]) -> list[str]:
    """Locations grouped by folder, ``<folder>/: a, b``, sibling folders holding the same names
    merged (``.../08_reporting/{logistic_regression,random_forest}/: metrics.json, ...``).

    A folder holding a single product is written as that product's full path.
    """
    folders: dict[str, list[str]] = {}
    for location in dict.fromkeys(locations):
        folder, _, name = location.rstrip("/").rpartition("/")
        folders.setdefault(folder, []).append(name)
    merged: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for folder, names in folders.items():
        parent, _, leaf = folder.rpartition("/")
        merged.setdefault((parent, tuple(names)), []).append(leaf)
    groups = []
    for (parent, products), leaves in merged.items():
        folder = (
            f"{parent}/{leaves[0]}"
            if len(leaves) == 1
            else f"{parent}/{{{','.join(sorted(leaves))}}}"
        )
        line = (
            f"{folder}/{products[0]}" if len(products) == 1 else f"{folder}/: {', '.join(products)}"
        )
        groups.append((layer_rank(folder + "/"), line))
    return [line for _rank, line in sorted(groups, key=lambda group: group[0])]


# --------------------------------------------------------------------------- headline figures


def _number(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None else f"{float(value):.{digits}f}"


def accuracy_line(models: Mapping[str, Mapping[str, Any]]) -> str | None:
    """``accuracy: logistic_regression 0.933 (macro-F1 0.930), random_forest ...; 60 test tiles``."""
    scored = {
        name: m for name, m in sorted(models.items()) if isinstance(m, Mapping) and "accuracy" in m
    }
    if not scored:
        return None
    parts = [
        f"{name} {_number(m['accuracy'])} (macro-F1 {_number(m.get('macro_f1'))})"
        for name, m in scored.items()
    ]
    n_test = {int(m["n_test"]) for m in scored.values() if m.get("n_test") is not None}
    tail = f" on {n_test.pop():,} test tiles" if len(n_test) == 1 else ""
    return f"accuracy{tail}: " + ", ".join(parts)


def shares_line(report: Mapping[str, Any], date: str = "") -> str:
    """``chips: 118 scored of 124 planned (6 empty); shares: AnnualCrop 34 %, ... others 9 %``."""
    chips = dict(report.get("chips") or {})
    unit = "cells" if report.get("cells") else "chips"
    counts = report.get("cells") or chips
    scored, planned = counts.get("scored", 0), counts.get("planned", 0)
    others = [
        f"{counts[key]:,} {key}" for key in ("empty", "unreadable", "pending") if counts.get(key)
    ]
    line = f"{date + ': ' if date else ''}{unit}: {scored:,} scored of {planned:,} planned"
    if others:
        line += f" ({', '.join(others)})"
    if report.get("complete") is False:
        line += ", INCOMPLETE"
    shares = sorted((report.get("shares") or {}).items(), key=lambda item: -item[1])
    named = [f"{name} {100 * share:.0f} %" for name, share in shares[:MAX_SHARES] if share > 0]
    rest = sum(share for _name, share in shares[MAX_SHARES:])
    if rest > 0:
        named.append(f"{len(shares) - MAX_SHARES} others {100 * rest:.0f} %")
    if named:
        line += "; shares: " + ", ".join(named)
    return line


def assessment_line(report: Mapping[str, Any]) -> str:
    """``assess: overall accuracy 0.79 +- 0.04 (95 % CI), 150 reference chips, 12 unscored``."""
    oa = report.get("overall_accuracy")
    if oa and oa.get("estimate") is not None:
        ci = (
            f" +- {_number(oa['ci95'], 2)} (95 % CI)"
            if oa.get("ci95") is not None
            else " (no CI: a mapped class has fewer than 2 reference chips)"
        )
        accuracy = f"overall accuracy {_number(oa['estimate'], 2)}{ci}"
    else:
        accuracy = "overall accuracy n/a (no reference chip on a scored chip)"
    line = f"assess: {accuracy}, {report.get('n_reference', 0):,} reference chips"
    if report.get("n_unscored"):
        line += f", {report['n_unscored']:,} unscored"
    if report.get("n_training_excluded"):
        line += f", {report['n_training_excluded']:,} left out as training chips"
    return line


def change_line(
    transitions: Mapping[str, Any] | None, detection: Mapping[str, Any] | None
) -> str | None:
    """``change: 18 of 153 compared chips changed; vs reference: ROC AUC 0.74, F1 0.29 ...``."""
    parts = []
    if transitions:
        chips = transitions.get("chips") or {}
        compared = chips.get("both_scored")
        changed = transitions.get("changed_chips")
        text = (
            f"{changed:,} chips changed"
            if compared is None
            else f"{changed:,} of {compared:,} compared chips changed"
        )
        if chips.get("cloudy"):
            text += f" ({chips['cloudy']:,} cloudy)"
        parts.append(text)
    if detection is not None:
        if detection.get("reference") is None:
            parts.append("no reference labels (change.reference)")
        else:
            keys = (
                ("ROC AUC", "roc_auc"),
                ("precision", "precision"),
                ("recall", "recall"),
                ("F1", "f1"),
                ("false alarms", "false_alarm_rate"),
            )
            parts.append(
                "vs reference: "
                + ", ".join(f"{label} {_number(detection.get(key), 2)}" for label, key in keys)
            )
    return "change: " + "; ".join(parts) if parts else None


def figure_lines(reports: Mapping[str, Any]) -> list[str]:
    """The headline figures of the reports a run saved (see the module docstring), in run order."""
    lines = []
    models = {
        name[: -len(MODEL_METRICS)]: data
        for name, data in reports.items()
        if name.endswith(MODEL_METRICS) and "." in name
    }
    summary = reports.get(METRICS_SUMMARY)
    if isinstance(summary, Mapping):
        models.update({name: data for name, data in summary.items() if isinstance(data, Mapping)})
    if line := accuracy_line(models):
        featurizer = summary.get("featurizer") if isinstance(summary, Mapping) else None
        lines.append(
            line.replace("accuracy", f"accuracy ({featurizer})", 1) if featurizer else line
        )
    for name, data in reports.items():
        if name.endswith(CLASS_SHARES) and isinstance(data, Mapping):
            lines.append(shares_line(data, name[: -len(CLASS_SHARES)].rstrip(".")))
    if isinstance(reports.get(ASSESSMENT), Mapping):
        lines.append(assessment_line(reports[ASSESSMENT]))
    if line := change_line(reports.get(TRANSITIONS), reports.get(DETECTION)):
        lines.append(line)
    return lines


def is_report(dataset_name: str) -> bool:
    return (
        dataset_name in (METRICS_SUMMARY, ASSESSMENT, TRANSITIONS, DETECTION)
        or dataset_name.endswith(CLASS_SHARES)
        or (dataset_name.endswith(MODEL_METRICS) and "." in dataset_name)
    )


# --------------------------------------------------------------------------- the block


def summary_lines(
    pipelines: Sequence[str],
    seconds: float,
    products: Mapping[str, str],
    reports: Mapping[str, Any],
    mlflow_run: str | None = None,
) -> list[str]:
    """The summary block: header, figures, key products, other products by folder, MLflow run.

    ``products``: dataset name -> location, in the order they were saved.
    """
    lines = [
        f"Run summary: {'+'.join(pipelines) or '__default__'} finished in {format_duration(seconds)}"
    ]
    lines += [f"  {line}" for line in figure_lines(reports)]
    key = [(label, products[name]) for name, label in KEY_PRODUCTS.items() if name in products]
    width = max([len(label) for label, _ in key] + [len("written")])
    lines += [f"  {label:<{width}}  {location}" for label, location in key]
    shown = {location for _label, location in key}
    rest = folder_lines(location for location in products.values() if location not in shown)
    if len(rest) > MAX_FOLDER_LINES:
        hidden = rest[MAX_FOLDER_LINES - 1 :]
        layers = dict.fromkeys(
            match.group(0).strip("/") for line in hidden if (match := _LAYER.search(line))
        )
        where = f" in {', '.join(layers)}" if layers else ""
        rest = [*rest[: MAX_FOLDER_LINES - 1], f"... and {len(hidden)} more folders{where}"]
    for index, line in enumerate(rest):
        lines.append(f"  {'written' if index == 0 else '':<{width}}  {line}")
    if not products:
        lines.append("  nothing was written to storage")
    lines.append(
        f"  MLflow run {mlflow_run}"
        if mlflow_run
        else "  MLflow: no run (tracking is off for this run)"
    )
    return lines


class RunSummaryHooks:
    """Logs :func:`summary_lines` at INFO after a pipeline run completes.

    Registered first in ``HOOKS`` (hooks run last-in, first-out): its ``before_pipeline_run``
    comes after kedro-mlflow opened the run (whose id it notes), and with ``trylast`` its
    ``after_pipeline_run`` prints after every other hook, the last lines of the run.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._catalog: Any = None
        self._pipelines: list[str] = []
        self._started = time.perf_counter()
        self._products: dict[str, str] = {}
        self._reports: dict[str, Any] = {}
        self._mlflow_run: str | None = None

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], catalog: Any) -> None:
        with self._lock:
            self._reset()
            self._catalog = catalog
            names = run_params.get("pipeline_names") or [
                run_params.get("pipeline_name") or "__default__"
            ]
            self._pipelines = [str(name) for name in names]
            self._mlflow_run = mlflow_run_description()

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        if self._catalog is None:
            return
        try:
            location = dataset_location(self._catalog.get(dataset_name))
        except Exception:  # noqa: BLE001 - the summary must never fail a run
            location = None
        if (
            location is not None
            and _is_local(location)
            and not os.path.exists(_local_path(location))
        ):
            location = None  # e.g. no class COG for a run over plain tiles
        with self._lock:
            if location is not None:
                self._products.pop(dataset_name, None)
                self._products[dataset_name] = location
            if is_report(dataset_name) and isinstance(data, Mapping):
                self._reports[dataset_name] = data

    @hook_impl(trylast=True)
    def after_pipeline_run(self) -> None:
        with self._lock:
            if self._catalog is None:
                return
            try:
                lines = summary_lines(
                    self._pipelines,
                    time.perf_counter() - self._started,
                    self._products,
                    self._reports,
                    self._mlflow_run,
                )
            except Exception as error:  # noqa: BLE001 - the summary must never fail a run
                lines = [f"Run summary unavailable: {error}"]
            self._reset()
        for line in lines:
            logger.info(line)

    @hook_impl
    def on_pipeline_error(self) -> None:
        with self._lock:
            self._reset()


def mlflow_run_description() -> str | None:
    """``<run id> (experiment <name>, <tracking URI>)`` of the open MLflow run, or None."""
    try:
        import mlflow

        run = mlflow.active_run()
        if run is None:
            return None
        experiment = mlflow.get_experiment(run.info.experiment_id)
        name = experiment.name if experiment is not None else run.info.experiment_id
        return f"{run.info.run_id} (experiment {name}, {redact_url(mlflow.get_tracking_uri())})"
    except Exception:  # noqa: BLE001 - the summary must never fail a run
        return None
