"""`train` from EuroSAT tiles plus reference polygons drawn over a real Sentinel-2 scene (coarse scheme)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from conftest import CZECH_SCENE as SCENE
from conftest import PASSENGER_MODELS, SAMPLE_TILES, SHARED_DATA, make_project_copy, run_kedro

pytestmark = pytest.mark.slow

SHARED_LABELS = SHARED_DATA / "labels" / "czech_west_labels.geojson"
COARSE = ["built", "cropland", "forest", "grassland", "water"]
# The shared squares' first 8 built, 8 forest and 24 cropland: every class and both splits at a
# sixth of the featurizing and fitting (the squares enter training 8-fold augmented).
SUBSET = {"built": 8, "forest": 8, "cropland": 24}


@pytest.fixture(scope="module")
def labels(tmp_path_factory) -> Path:
    collection = json.loads(SHARED_LABELS.read_text())
    taken = dict.fromkeys(SUBSET, 0)
    kept = []
    for feature in collection["features"]:
        label = feature["properties"]["class"]
        if taken[label] < SUBSET[label]:
            taken[label] += 1
            kept.append(feature)
    path = tmp_path_factory.mktemp("labels") / "czech_west_subset.geojson"
    path.write_text(json.dumps({**collection, "features": kept}))
    return path


@pytest.fixture(scope="module")
def reference_project(tmp_path_factory, spark, labels):
    project = make_project_copy(tmp_path_factory.mktemp("reference") / "project")
    run_kedro(
        project,
        "train",
        tiles_dir=str(SAMPLE_TILES),
        class_scheme="coarse",
        reference_labels=str(labels),
        reference_rasters=str(SCENE),
        **PASSENGER_MODELS,
    )
    return project


def test_every_label_becomes_a_chip_or_a_rejection(reference_project, labels, spark):
    chips = pd.read_parquet(reference_project / "data/02_intermediate/reference_chips.parquet")
    rejected = pd.read_csv(reference_project / "data/02_intermediate/rejected_labels.csv")
    features = json.loads(labels.read_text())["features"]
    used = {i for ids in chips["label_ids"] for i in ids}
    assert len(used) + rejected["label_id"].nunique() == len(features) == sum(SUBSET.values())
    # The squares were drawn on the scoring grid itself: one chip per square, fully covered.
    assert len(chips) == len(used) and (chips["cover"] > 0.99).all()
    assert set(chips["label"]) == {"cropland", "forest", "built"}
    assert set(chips["split"]) == {"train", "test"}


def test_reference_chips_join_the_tiles_in_one_feature_table(reference_project, spark):
    chips = pd.read_parquet(reference_project / "data/02_intermediate/reference_chips.parquet")
    features = spark.read.parquet(str(reference_project / "data/04_feature/features")).toPandas()
    reference = features[features["source"] == "reference"]
    tiles = features[features["source"] == "tiles"]
    assert len(tiles) == 300 and (tiles["weight"] == 1.0).all()
    n_train = int((chips["split"] == "train").sum())
    n_test = int((chips["split"] == "test").sum())
    # Training chips enter with their 8 flips/rotations, test chips once.
    assert (reference["split"] == "train").sum() == 8 * n_train
    assert (reference["split"] == "test").sum() == n_test
    # balanced: reference training rows weigh together what the 240 training tiles weigh (at
    # least 1 each), shared equally between the reference classes (class_balance).
    trained = reference[reference["split"] == "train"]
    assert trained["weight"].sum() == pytest.approx(max(240, 8 * n_train), rel=1e-6)
    per_class = trained.groupby("label")["weight"].sum()
    assert per_class.to_numpy() == pytest.approx([per_class.mean()] * len(per_class), rel=1e-6)
    assert trained.groupby("label")["weight"].nunique().eq(1).all()
    assert set(tiles["label"]) == set(COARSE)


def test_models_learn_the_coarse_scheme_and_report_both_sources(reference_project):
    scheme = json.loads((reference_project / "data/06_models/efficientnet_lite0/class_scheme.json").read_text())
    assert scheme["name"] == "coarse" and scheme["classes"] == COARSE
    metrics = json.loads((reference_project / "data/08_reporting/logistic_regression/metrics.json").read_text())
    assert [c for c in metrics["per_class"]] == COARSE or set(metrics["per_class"]) == set(COARSE)
    assert set(metrics["by_source"]) == {"reference", "tiles"}
    assert metrics["by_source"]["tiles"]["n_test"] == 60
    training = pd.read_csv(reference_project / "data/06_models/efficientnet_lite0/reference_training_chips.csv")
    chips = pd.read_parquet(reference_project / "data/02_intermediate/reference_chips.parquet")
    assert set(training["chip_id"]) == set(chips.loc[chips["split"] == "train", "chip_id"])
