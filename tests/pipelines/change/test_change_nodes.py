"""Change parameters fail in one line naming the key; changed chips become lon/lat polygons."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import RASTERS, SHARED_DATA

from aerial_kedro.errors import ParameterError
from aerial_kedro.pipelines.change.nodes import changed_chips_geojson, validate_change_params
from aerial_kedro.pipelines.change.pipeline import create_pipeline

GOOD = {
    "before": str(RASTERS / "czech_s2_tci_20220316_cloudy.tif"),
    "after": str(RASTERS / "czech_s2_tci_20220319.tif"),
    "score": "tv",
    "confidence_floor": 0.5,
    "threshold": 0.5,
    "require_class_change": False,
    "max_cloud_fraction": 0.3,
    "reference": None,
    "reference_change_value": 2,
    "reference_min_fraction": 0.1,
    "groups": None,
}


def test_good_parameters_pass():
    settings = validate_change_params(GOOD)
    assert settings.threshold == 0.5 and settings.groups is None
    with_reference = {**GOOD, "reference": str(SHARED_DATA / "oscd/pisa/change_labels.tif")}
    assert validate_change_params(with_reference).reference_min_fraction == 0.1


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"before": None}, r"^change.before: not set; pass --params=change.before=PATH$"),
        ({"threshold": 1.5}, r"^change.threshold: '1.5' is not a number in \[0, 1\]$"),
        ({"score": "cosine"}, r"^change.score: 'cosine' is not allowed"),
        ({"require_class_change": "yes"}, r"^change.require_class_change: 'yes'"),
        ({"groups": {"Forest": 3}}, r"^change.groups: not a mapping"),
        ({"reference": "nowhere.tif"}, r"^change.reference: 'nowhere.tif' is not a file$"),
    ],
)
def test_bad_parameters_name_the_key(override, message):
    with pytest.raises(ParameterError, match=message):
        validate_change_params({**GOOD, **override})


def test_changed_chips_geojson_is_lon_lat_with_both_classes():
    table = pd.DataFrame(
        [
            {"chip_id": "32633_-8717_849", "crs": "EPSG:32633", "row": -8717, "col": 849,
             "minx": 543360.0, "miny": 5578240.0, "maxx": 544000.0, "maxy": 5578880.0,
             "class_before": "AnnualCrop", "class_after": "Residential",
             "coarse_before": "cropland", "coarse_after": "built", "change_score": 0.91234567,
             "changed": True},
            {"chip_id": "32633_-8717_850", "crs": "EPSG:32633", "row": -8717, "col": 850,
             "minx": 544000.0, "miny": 5578240.0, "maxx": 544640.0, "maxy": 5578880.0,
             "class_before": "Forest", "class_after": "Forest", "coarse_before": "forest",
             "coarse_after": "forest", "change_score": 0.0, "changed": False},
        ]
    )  # fmt: skip
    collection = changed_chips_geojson(table)
    assert [f["id"] for f in collection["features"]] == ["32633_-8717_849"]
    props = collection["features"][0]["properties"]
    assert props["coarse_before"] == "cropland" and props["coarse_after"] == "built"
    assert props["change_score"] == 0.912346
    lon, lat = collection["features"][0]["geometry"]["coordinates"][0][0]
    assert 15.6 < lon < 15.62 and 50.3 < lat < 50.4  # east Bohemia


def test_both_dates_are_the_scoring_pipeline_sharing_the_trained_model():
    pipeline = create_pipeline()
    inputs = pipeline.inputs()
    assert {"scoring_model", "featurizer_onnx", "featurizer_spec"} <= inputs
    assert {"params:change.before", "params:change.after", "params:scoring"} <= inputs
    outputs = pipeline.all_outputs()
    assert {"before.scoring.predictions", "after.scoring.predictions"} <= outputs
    assert "scoring.predictions" not in outputs
