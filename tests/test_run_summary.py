"""The end-of-run summary, the log filter of known noise and the fit heartbeat, without a Kedro run
(tests/integration/test_run_log.py checks them in real `kedro run`s)."""

from __future__ import annotations

import json
import logging
import re
import time
from types import SimpleNamespace

import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro_datasets.json import JSONDataset as KedroJSONDataset

from aerial_kedro.datasets import JSONDataset, OptionalDataset
from aerial_kedro.pipelines.modeling.nodes import train_classifier
from aerial_kedro.progress import FitHeartbeatHooks, Heartbeat, heartbeat_line
from aerial_kedro.quiet import KNOWN_LOG_NOISE, KnownLogNoise, filter_known_log_noise
from aerial_kedro.run_summary import (
    RunSummaryHooks,
    dataset_location,
    folder_lines,
    summary_lines,
)

METRICS = {
    "logistic_regression": {"accuracy": 0.9333, "macro_f1": 0.9321, "n_test": 60, "per_class": {}},
    "random_forest": {"accuracy": 0.8833, "macro_f1": 0.879, "n_test": 60, "per_class": {}},
    "featurizer": "efficientnet_lite0",
    "data_source": "data/01_raw/eurosat",
}
SHARES = {
    "run_id": "czech-1a2b",
    "chips": {"planned": 124, "scored": 118, "empty": 6, "unreadable": 0, "pending": 0},
    "complete": True,
    "shares": {"AnnualCrop": 0.34, "Forest": 0.21, "Pasture": 0.12, "River": 0.0, "Highway": 0.1,
               "Industrial": 0.05, "Residential": 0.18},
}  # fmt: skip
ACCURACY = {
    "overall_accuracy": {"estimate": 0.7912, "ci95": 0.0431, "se": 0.022},
    "n_reference": 150,
    "n_unscored": 12,
    "n_training_excluded": 0,
}
TRANSITIONS = {"chips": {"planned": 160, "both_scored": 153, "cloudy": 3}, "changed_chips": 18}
DETECTION = {"reference": "labels.tif", "roc_auc": 0.74, "precision": 0.31, "recall": 0.28,
             "f1": 0.29, "false_alarm_rate": 0.08}  # fmt: skip


# --------------------------------------------------------------------------- the block


def labelled(label: str, path: str, text: str) -> bool:
    """A summary line ``  <label>   <path>``."""
    return re.search(rf"^  {re.escape(label)} +{re.escape(path)}$", text, re.MULTILINE) is not None


def test_train_summary_names_accuracy_per_model_and_folders():
    root = "/p/data"
    products = {
        "tile_index": f"{root}/02_intermediate/tile_index",
        "featurizer_onnx": f"{root}/06_models/featurizers/efficientnet_lite0.onnx",
        "logistic_regression.classifier_model": f"{root}/06_models/efficientnet_lite0/logistic_regression",
        "random_forest.classifier_model": f"{root}/06_models/efficientnet_lite0/random_forest",
        "logistic_regression.metrics": f"{root}/08_reporting/logistic_regression/metrics.json",
        "logistic_regression.confusion_matrix_plot": f"{root}/08_reporting/logistic_regression/confusion_matrix.png",
        "random_forest.metrics": f"{root}/08_reporting/random_forest/metrics.json",
        "random_forest.confusion_matrix_plot": f"{root}/08_reporting/random_forest/confusion_matrix.png",
        "metrics_summary": f"{root}/08_reporting/metrics_summary.json",
    }  # fmt: skip
    lines = summary_lines(["train"], 192.4, products, {"metrics_summary": METRICS}, "abc123 (x)")
    text = "\n".join(lines)
    print(text)
    assert lines[0] == "Run summary: train finished in 3m12s"
    assert (
        "accuracy (efficientnet_lite0) on 60 test tiles: logistic_regression 0.933 (macro-F1 0.932), "
        "random_forest 0.883 (macro-F1 0.879)" in text
    )
    assert labelled("metrics", f"{root}/08_reporting/metrics_summary.json", text)
    # Sibling folders holding the same files are one line; reporting comes before models.
    merged = f"{root}/08_reporting/{{logistic_regression,random_forest}}/: metrics.json, confusion_matrix.png"
    assert merged in text
    assert text.index(merged) < text.index("06_models") < text.index("02_intermediate")
    assert f"{root}/06_models/efficientnet_lite0/: logistic_regression, random_forest" in text
    assert lines[-1] == "  MLflow run abc123 (x)"
    assert len(lines) <= 15


def test_score_assess_summary_gives_chips_shares_map_cog_and_accuracy_with_ci():
    reports = "/p/data/08_reporting"
    products = {
        "scoring.predictions": "/p/data/07_model_output/scoring/predictions",
        "scoring.class_geotiff": f"{reports}/scoring/land_use_classes.tif",
        "scoring.map_png": f"{reports}/scoring/land_use_map.png",
        "scoring.class_shares": f"{reports}/scoring/class_shares.json",
        "assessment.accuracy": f"{reports}/assessment/accuracy.json",
        "assessment.accuracy_plot": f"{reports}/assessment/accuracy.png",
    }
    lines = summary_lines(
        ["assess"], 64, products, {"scoring.class_shares": SHARES, "assessment.accuracy": ACCURACY}
    )
    text = "\n".join(lines)
    print(text)
    assert (
        "chips: 118 scored of 124 planned (6 empty); shares: AnnualCrop 34 %, Forest 21 %, "
        "Residential 18 %, Pasture 12 %, 3 others 15 %" in text
    )
    assert "assess: overall accuracy 0.79 +- 0.04 (95 % CI), 150 reference chips, 12 unscored" in text
    no_ci = {**ACCURACY, "overall_accuracy": {"estimate": 0.61, "ci95": None, "se": None}}
    without = "\n".join(summary_lines(["assess"], 1, {}, {"assessment.accuracy": no_ci}))
    assert "overall accuracy 0.61 (no CI: a mapped class has fewer than 2 reference chips)" in without
    assert labelled("map", f"{reports}/scoring/land_use_map.png", text)
    assert labelled("class COG", f"{reports}/scoring/land_use_classes.tif", text)
    assert labelled("accuracy", f"{reports}/assessment/accuracy.json", text)
    assert f"{reports}/scoring/class_shares.json" in text
    assert "/p/data/07_model_output/scoring/predictions" in text
    assert lines[-1] == "  MLflow: no run (tracking is off for this run)"


def test_change_summary_gives_both_dates_and_detection_metrics():
    reports = {
        "before.scoring.class_shares": SHARES,
        "after.scoring.class_shares": {**SHARES, "complete": False},
        "change.transitions": TRANSITIONS,
        "change.detection_metrics": DETECTION,
    }
    text = "\n".join(summary_lines(["change"], 5, {}, reports))
    assert "before: chips: 118 scored of 124 planned" in text
    assert "after: chips: 118 scored of 124 planned (6 empty), INCOMPLETE" in text
    assert (
        "change: 18 of 153 compared chips changed (3 cloudy); vs reference: ROC AUC 0.74, "
        "precision 0.31, recall 0.28, F1 0.29, false alarms 0.08" in text
    )
    unlabelled = summary_lines(["change"], 5, {}, {**reports, "change.detection_metrics": {"reference": None}})
    assert "no reference labels (change.reference)" in "\n".join(unlabelled)


def test_folder_lines_merge_same_named_siblings_and_cap_the_block():
    dates = [f"/d/08_reporting/change/{date}/{name}" for date in ("before", "after")
             for name in ("land_use_map.png", "class_shares.json")]  # fmt: skip
    assert folder_lines(dates) == ["/d/08_reporting/change/{after,before}/: land_use_map.png, class_shares.json"]
    assert folder_lines(["/d/07_model_output/scoring/predictions"] * 2) == [
        "/d/07_model_output/scoring/predictions"
    ]
    many = {f"d{i}": f"/d/0{1 + i % 8}_layer/folder{i}/a{i}" for i in range(12)}
    lines = summary_lines(["x"], 1, many, {})
    assert len(lines) <= 15
    assert lines[-2].strip().startswith("... and 6 more folders in ")


# --------------------------------------------------------------------------- locations


def test_dataset_locations_of_plain_wrapped_versioned_and_memory_datasets(tmp_path):
    plain = JSONDataset(filepath=str(tmp_path / "a.json"))
    assert dataset_location(plain) == (tmp_path / "a.json").as_posix()
    wrapped = OptionalDataset(dataset={"type": "aerial_kedro.datasets.CSVDataset", "filepath": str(tmp_path / "b.csv")})
    assert dataset_location(wrapped) == (tmp_path / "b.csv").as_posix()
    assert dataset_location(MemoryDataset()) is None
    assert dataset_location(None) is None

    from kedro.io import Version

    versioned = KedroJSONDataset(filepath=str(tmp_path / "v.json"), version=Version(None, None))
    versioned.save({"x": 1})
    location = dataset_location(versioned)
    assert location is not None and location.startswith((tmp_path / "v.json").as_posix() + "/")
    assert location.endswith("/v.json")
    assert json.loads(open(location).read()) == {"x": 1}


def test_remote_locations_keep_their_protocol_and_lose_their_secrets():
    remote = JSONDataset(filepath="abfs://reports@account.dfs.core.windows.net/metrics.json",
                         credentials={"account_name": "account", "anon": False})  # fmt: skip
    location = dataset_location(remote)
    assert location.startswith("abfs://") and location.endswith("/metrics.json")


def test_hooks_log_what_the_run_saved_with_real_paths(tmp_path, caplog):
    catalog = DataCatalog(
        {
            "scoring.map_png": JSONDataset(filepath=str(tmp_path / "land_use_map.png")),
            "scoring.class_shares": JSONDataset(filepath=str(tmp_path / "class_shares.json")),
            "scoring.class_geotiff": JSONDataset(filepath=str(tmp_path / "never_written.tif")),
            "scoring.map_table": MemoryDataset(),
        }
    )
    hooks = RunSummaryHooks()
    hooks.before_pipeline_run({"pipeline_names": ["score"]}, catalog)
    for name, data in (("scoring.map_png", {}), ("scoring.class_shares", SHARES), ("scoring.map_table", [1])):
        catalog.save(name, data)
        hooks.after_dataset_saved(name, data)
    hooks.after_dataset_saved("scoring.class_geotiff", None)  # "saved" without a file (plain tiles)
    with caplog.at_level(logging.INFO, logger="aerial_kedro.run_summary"):
        hooks.after_pipeline_run()
    text = "\n".join(r.getMessage() for r in caplog.records if r.name == "aerial_kedro.run_summary")
    print(text)
    assert text.startswith("Run summary: score finished in")
    assert labelled("map", (tmp_path / "land_use_map.png").as_posix(), text)
    assert labelled("written", (tmp_path / "class_shares.json").as_posix(), text)
    assert "never_written" not in text and "map_table" not in text
    assert "chips: 118 scored of 124 planned" in text
    caplog.clear()
    hooks.after_pipeline_run()  # once per run
    assert not caplog.records


# --------------------------------------------------------------------------- known log noise


def test_parameter_loads_are_dropped_and_dataset_loads_kept():
    import aerial_kedro.settings  # noqa: F401 - what every kedro command imports first

    data_catalog = logging.getLogger("kedro.io.data_catalog")
    assert any(isinstance(f, KnownLogNoise) for f in data_catalog.filters)
    filter_known_log_noise()  # idempotent
    assert sum(isinstance(f, KnownLogNoise) for f in data_catalog.filters) == 1

    def passes(message: str, *args, level: int = logging.INFO) -> bool:
        record = data_catalog.makeRecord(data_catalog.name, level, __file__, 1, message, args, None)
        return bool(data_catalog.filter(record))

    assert not passes("Loading data from %s (%s)...", "params:seed", "MemoryDataset")
    assert not passes("Loading data from %s (%s)...", "params:logistic_regression.classifier", "MemoryDataset")
    assert not passes("Loading data from %s (%s)...", "parameters", "MemoryDataset")
    assert passes("Loading data from %s (%s)...", "tile_index", "SparkDataset")
    assert passes("Loading data from %s (%s)...", "params_table", "CSVDataset")
    assert passes("Saving data to %s (%s)...", "params:seed", "MemoryDataset")
    assert passes("Loading data from %s (%s)...", "params:seed", "MemoryDataset", level=logging.WARNING)
    assert all(why for _logger, _pattern, why in KNOWN_LOG_NOISE)


def test_mlflow_artifact_location_is_absolute(tmp_path):
    """A relative one makes kedro-mlflow log "The 'tracking_uri' key ... is converted to
    file:///.../mlruns" at every run, contradicting the sqlite store actually used."""
    from conftest import PROJECT_ROOT
    from kedro.config import OmegaConfigLoader

    from aerial_kedro.settings import CONFIG_LOADER_ARGS
    from aerial_kedro.tracking.resolvers import register_project_path_resolver

    register_project_path_resolver(tmp_path)
    config = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), env="local", **CONFIG_LOADER_ARGS)["mlflow"]
    location = config["tracking"]["experiment"]["create_experiment_kwargs"]["artifact_location"]
    assert location == f"{tmp_path.resolve().as_posix()}/mlruns"


# --------------------------------------------------------------------------- heartbeat


def test_heartbeat_line():
    assert heartbeat_line("random_forest", "fitting", 90.4) == "still fitting random_forest: 1m30s"


def test_heartbeat_logs_while_running_and_stops(caplog):
    with caplog.at_level(logging.INFO, logger="aerial_kedro.progress"):
        beat = Heartbeat("slow_model", "fitting", interval_s=0.05).start()
        time.sleep(0.3)
        beat.stop()
        stopped = len(caplog.records)
        time.sleep(0.15)
    lines = [r.getMessage() for r in caplog.records]
    assert stopped >= 2 and len(caplog.records) == stopped
    assert all(line.startswith("still fitting slow_model: ") for line in lines)


def test_fit_heartbeat_hooks_beat_for_modeling_nodes_only(caplog, monkeypatch):
    monkeypatch.delenv("AERIAL_KEDRO_HEARTBEAT_S", raising=False)
    hooks = FitHeartbeatHooks(interval_s=0.05)
    fit = SimpleNamespace(func=train_classifier, namespace="slow_model", name="slow_model.train_classifier")
    other = SimpleNamespace(func=json.dumps, namespace=None, name="other")
    with caplog.at_level(logging.INFO, logger="aerial_kedro.progress"):
        hooks.before_node_run(other)
        hooks.before_node_run(fit)
        time.sleep(0.3)
        hooks.after_node_run(fit)
        hooks.after_node_run(other)
        count = len(caplog.records)
        time.sleep(0.15)
    assert count >= 2 and len(caplog.records) == count
    assert {r.getMessage().split(":")[0] for r in caplog.records} == {"still fitting slow_model"}

    # A failing node stops its heartbeat too.
    hooks.before_node_run(fit)
    hooks.on_node_error(fit)
    assert not hooks._beats


def test_heartbeat_interval_comes_from_the_environment(monkeypatch, caplog):
    monkeypatch.setenv("AERIAL_KEDRO_HEARTBEAT_S", "0.05")
    hooks = FitHeartbeatHooks()  # 30 s unless the variable says otherwise
    fit = SimpleNamespace(func=train_classifier, namespace="slow_model", name="slow_model.train_classifier")
    with caplog.at_level(logging.INFO, logger="aerial_kedro.progress"):
        hooks.before_node_run(fit)
        time.sleep(0.25)
        hooks.after_pipeline_run()
    assert any("still fitting slow_model" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("seconds,text", [(5, "5s"), (65, "1m05s"), (7322, "2h02m")])
def test_durations(seconds, text):
    from aerial_kedro.progress import format_duration

    assert format_duration(seconds) == text
