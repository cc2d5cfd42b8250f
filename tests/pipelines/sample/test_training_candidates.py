"""`sample`'s training candidates on a small generated map: which chips may be proposed, from
which pool, and what the GeoJSON says about them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import scoring_run

from aerial_kedro.chips.descriptors import colour_cells
from aerial_kedro.pipelines.sample.nodes import candidate_products, pick_training_candidates
from aerial_kedro.pipelines.sample.settings import SampleSettings

RUN = scoring_run("scene-1")


def settings(**changes: object) -> SampleSettings:
    base = {"target_se": 0.05, "min_per_stratum": 1, "expected_users_accuracy": 0.8, "seed": 1}
    return SampleSettings.from_params({**base, **changes})


@pytest.fixture(scope="module")
def predictions(spark):
    """12 scored chips of run scene-1 (chip i has confidence 0.55 + 0.03 i; chips 0-5 look alike,
    green fields, 6-11 another kind, grey roofs), one unreadable chip and one of another run."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(14):
        colour = (70, 110, 60) if i < 6 else (180, 180, 175)
        pixels = np.clip(rng.normal(colour, 6, (64, 64, 3)), 0, 255).astype(np.uint8)
        confidence = 0.55 + 0.03 * i  # the top of its probabilities, as a map has it
        rows.append({
            "chip_id": f"32633_-100_{i}", "predicted_label": "cropland", "crs": "EPSG:32633",
            "minx": 640.0 * i, "miny": 63360.0, "maxx": 640.0 * (i + 1), "maxy": 64000.0,
            "confidence": confidence, "probabilities": [confidence, 1.0 - confidence],
            "colour_cells": colour_cells(pixels),
            "status": "unreadable" if i == 12 else "scored",
            "run_id": "other" if i == 13 else "scene-1",
        })  # fmt: skip
    return spark.createDataFrame(pd.DataFrame(rows))


def ids(*numbers: int) -> pd.DataFrame:
    return pd.DataFrame({"chip_id": [f"32633_-100_{i}" for i in numbers]})


def test_never_the_trained_or_the_designs_chips_and_only_the_runs_scored_ones(predictions):
    picked = pick_training_candidates(
        predictions, RUN, drawn=ids(2, 3, 4), training_chips=ids(0, 1),
        settings=settings(training_candidates=20),
    )  # fmt: skip
    assert set(picked["chip_id"]) == {f"32633_-100_{i}" for i in range(5, 12)}
    assert picked["rank"].tolist() == list(range(1, 8))
    # The model trained on chips 0-1 (the first kind): the first pick is of the other kind,
    # though the first kind's chip 5 is the least sure of the map.
    assert int(picked["chip_id"].iloc[0].rsplit("_", 1)[1]) >= 6
    assert picked["distance_to_labels"].iloc[0] > picked["distance_to_labels"].min()


def test_the_pool_is_the_chips_the_map_is_least_sure_of(predictions):
    picked = pick_training_candidates(
        predictions, RUN, drawn=ids(), training_chips=None,
        settings=settings(training_candidates=5, candidate_pool=3),
    )  # fmt: skip
    assert set(picked["chip_id"]) == {"32633_-100_0", "32633_-100_1", "32633_-100_2"}
    assert picked["distance_to_labels"].isna().all()  # nothing labelled on this map


def test_zero_candidates_and_a_census_give_none(predictions, caplog):
    none = settings(training_candidates=0)
    assert pick_training_candidates(predictions, RUN, ids(), None, none).empty
    census = ids(*range(12))  # the design drew every scored chip
    assert pick_training_candidates(predictions, RUN, census, None, settings()).empty
    assert "raise sample.target_se" in caplog.text


def test_a_map_without_colour_descriptors_is_refused_in_one_line(predictions):
    with pytest.raises(ValueError, match="no colour descriptors.*scoring.restart=true"):
        pick_training_candidates(predictions.drop("colour_cells"), RUN, ids(), None, settings())


def test_the_geojson_leaves_the_class_to_the_labeller(predictions):
    picked = pick_training_candidates(predictions, RUN, ids(), ids(0), settings(training_candidates=2))
    collection = candidate_products(picked)
    properties = [f["properties"] for f in collection["features"]]
    assert [p["rank"] for p in properties] == [1, 2]
    assert all(p["class"] is None and p["mapped_class"] == "cropland" for p in properties)
    ring = collection["features"][0]["geometry"]["coordinates"][0]
    assert all(-180 <= x <= 180 and -90 <= y <= 90 for x, y in ring)  # lon/lat
