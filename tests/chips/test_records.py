"""The scoring run's typed records give back the plain dicts they replaced, key for key."""

from __future__ import annotations

import copy
import json

import pytest

from aerial_kedro.chips.records import ModelDescription, ScoringRun
from aerial_kedro.geo.radiometry import Radiometry

# As plan_scoring and describe_model built them before the records, values and key order.
RUN = {
    "run_id": "czech_s2-3f2a9c1e",
    "source": "data/czech_s2.tif",
    "source_name": "czech_s2",
    "kind": "rasters",
    "n_items": 124,
    "n_chunks": 1,
    "n_inputs": 1,
    "n_rejected": 0,
    "radiometry": Radiometry("s2_l1c", 1.0, -1000.0, (0.0, 0.0, 0.0), (3000.0, 3000.0, 3000.0)).to_dict(),
    "chip_stride_px": 32,
    "max_empty_fraction": 0.5,
    "radiometry_reference": "data/czech_s2_later.tif",
    "radiometry_fit": {"applied": False, "mode": "never"},
    "started_at": "2026-11-29T20:34:37+00:00",
}
TILES_RUN = {**RUN, "kind": "tiles", "radiometry": None, "chip_stride_px": None,
             "radiometry_reference": None, "radiometry_fit": None}  # fmt: skip
MODEL = {
    "model": "logistic_regression",
    "model_version": "2026-11-03T09.12.45.120Z",
    "classifier": "LogisticRegressionModel",
    "classes": ["Forest", "Residential", "SeaLake"],
    "featurizer": "efficientnet_lite0",
    "model_key": "PipelineModel_4f1|9a0c",
}


@pytest.mark.parametrize("data", [RUN, TILES_RUN], ids=["rasters", "tiles"])
def test_a_run_gives_back_its_dict_in_the_same_order(data):
    run = ScoringRun.from_dict(data)
    assert json.dumps(run.to_dict()) == json.dumps(data)
    assert run.is_tiles == (data["kind"] == "tiles")


def test_a_model_description_gives_back_its_dict_in_the_same_order():
    model = ModelDescription.from_dict(MODEL)
    assert model.classes == ("Forest", "Residential", "SeaLake")
    assert json.dumps(model.to_dict()) == json.dumps(MODEL)
    unversioned = ModelDescription.from_dict({**MODEL, "model_version": None})
    assert unversioned.model_version is None


def test_fields_are_typed_values():
    run = ScoringRun.from_dict(RUN)
    assert run.radiometry == Radiometry.from_dict(RUN["radiometry"])
    assert run.chip_stride_px == 32 and ScoringRun.from_dict(TILES_RUN).radiometry is None


def test_records_read_back_from_their_dict_are_equal():
    """What reports and the run index store (to_dict) reads back as the same record."""
    run, model = ScoringRun.from_dict(RUN), ModelDescription.from_dict(MODEL)
    assert ScoringRun.from_dict(run.to_dict()) == run
    assert ModelDescription.from_dict(model.to_dict()) == model
    assert ScoringRun.from_dict(TILES_RUN).is_tiles and not run.is_tiles


def test_records_are_frozen_and_survive_a_deep_copy():
    """Kedro's in-memory datasets hand each node a deep copy."""
    run = ScoringRun.from_dict(RUN)
    with pytest.raises(AttributeError):
        run.run_id = "other"  # type: ignore[misc]
    assert copy.deepcopy(run) == run and copy.deepcopy(run) is not run


def test_an_unknown_run_kind_is_refused():
    with pytest.raises(ValueError, match="run kind 'mosaic' is not one of rasters, tiles"):
        ScoringRun.from_dict({**RUN, "kind": "mosaic"})
