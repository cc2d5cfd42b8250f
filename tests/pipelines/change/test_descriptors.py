"""The appearance comparison over Spark gives the numpy result, with a bounded reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import scoring_run

from aerial_kedro.change.appearance import (
    AppearanceCriteria,
    CellReference,
    SceneMoments,
    colour_change,
    conditional_colour_change,
)
from aerial_kedro.chip_rows import SCORED
from aerial_kedro.chips.descriptors import (
    colour_cells,
    decode_colour_cells,
    decode_texture,
    texture_features,
)
from aerial_kedro.pipelines.change.descriptors import appearance_changes


def dates(n: int = 90) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """Fields turning from green to brown (a third of the chips), grey town; on chip 7 a quarter
    of a field turns grey."""
    rng = np.random.default_rng(11)
    field = np.arange(n) % 3 == 1
    before = np.where(field[:, None, None, None], (60, 120, 50), (125, 125, 125)) + rng.normal(
        0, 6, (n, 64, 64, 3)
    )
    after = np.where(field[:, None, None, None], (150, 110, 80), (125, 125, 125)) + rng.normal(
        0, 6, (n, 64, 64, 3)
    )
    after[7, :32, :32] = 125
    ids = [f"32633_-100_{i}" for i in range(n)]
    return (
        ids,
        list(np.clip(before, 0, 255).astype(np.uint8)),
        list(np.clip(after, 0, 255).astype(np.uint8)),
    )


def predictions(spark, ids, chips, texture, run_id):
    rows = pd.DataFrame(
        {
            "chip_id": ids,
            "run_id": run_id,
            "status": SCORED,
            "colour_cells": [colour_cells(c) for c in chips],
            "texture": [texture_features(t, slice(None)) for t in texture],
        }
    )
    return spark.createDataFrame(rows).repartition(3)


@pytest.fixture(scope="module")
def scene(spark):
    ids, before, after = dates()
    rng = np.random.default_rng(12)
    texture_before, texture_after = rng.normal(size=(2, len(ids), 8))
    return {
        "ids": ids,
        "before": predictions(spark, ids, before, texture_before, "b"),
        "after": predictions(spark, ids, after, texture_after, "a"),
        "cb": decode_colour_cells([colour_cells(c) for c in before])[0],
        "ca": decode_colour_cells([colour_cells(c) for c in after])[0],
        "tb": decode_texture([texture_features(t, slice(None)) for t in texture_before]),
        "ta": decode_texture([texture_features(t, slice(None)) for t in texture_after]),
    }


def run(scene, criteria: AppearanceCriteria) -> pd.DataFrame:
    out = appearance_changes(
        scene["before"], scoring_run("b"), scene["after"], scoring_run("a"), scene["ids"], criteria
    )
    return out.set_index("chip_id").loc[scene["ids"]]


def test_spark_equals_numpy_with_the_whole_scene_as_reference(scene):
    out = run(scene, AppearanceCriteria(neighbours=50, reference_chips=1024))
    m = SceneMoments.of(scene["cb"], scene["ca"], scene["tb"], scene["ta"])
    reference = CellReference.of(scene["ids"], scene["cb"], scene["ca"], m)
    expected = conditional_colour_change(  # the default chip_baseline, 1: less the median cell
        scene["ids"], scene["cb"], scene["ca"], m, reference, 50, 0.95, baseline=1.0
    )
    np.testing.assert_allclose(out["colour_change"], expected, rtol=1e-5)
    assert out["colour_change"].idxmax() == scene["ids"][7]


def test_the_cell_window_reaches_the_executors(scene):
    out = run(scene, AppearanceCriteria(neighbours=50, reference_chips=1024, cell_window=3))
    m = SceneMoments.of(scene["cb"], scene["ca"], scene["tb"], scene["ta"])
    reference = CellReference.of(scene["ids"], scene["cb"], scene["ca"], m)
    expected = conditional_colour_change(
        scene["ids"], scene["cb"], scene["ca"], m, reference, 50, 0.95, window=3, baseline=1.0
    )
    np.testing.assert_allclose(out["colour_change"], expected, rtol=1e-5)
    plain = conditional_colour_change(
        scene["ids"], scene["cb"], scene["ca"], m, reference, 50, 0.95, baseline=1.0
    )
    assert not np.allclose(expected, plain)
    assert out["colour_change"].idxmax() == scene["ids"][7]


def test_a_reference_limited_to_some_chips_still_finds_the_change(scene):
    out = run(scene, AppearanceCriteria(neighbours=50, reference_chips=30))
    assert out["colour_change"].idxmax() == scene["ids"][7]


def test_no_neighbours_is_the_plain_standardised_difference(scene):
    out = run(scene, AppearanceCriteria(neighbours=0))
    m = SceneMoments.of(scene["cb"], scene["ca"], scene["tb"], scene["ta"])
    np.testing.assert_allclose(
        out["colour_change"], colour_change(scene["cb"], scene["ca"], m, 0.95, baseline=1.0), rtol=1e-6
    )
