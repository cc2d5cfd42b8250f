"""Issue 24 item 6: assess never reports an area for a class the map does not have.

Reference labels of a class that is no map class (after the class scheme) are refused in one
line before any chip is looked up or estimated. Real labels file, real Spark predictions.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pandas as pd
import pytest
from conftest import scoring_run

from aerial_kedro.chips.records import ModelDescription
from aerial_kedro.pipelines.assess.nodes import assess_map, prepare_reference

EUROSAT = ["AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial", "Pasture",
           "PermanentCrop", "Residential", "River", "SeaLake"]  # fmt: skip
UTM = "EPSG:32633"
CHIP = "32633_-8717_849"  # a chip of the Czech scene


def test_a_reference_class_the_map_does_not_have_is_refused_before_any_estimate(spark, tmp_path):
    """Before: a WARNING, then rc 0 with 'desert: mapped 0.0 km2, estimated 148.3 +- 0.0 km2'."""
    x, y = 849 * 640 + 320, 8717 * -640 - 320
    path = tmp_path / "desert.geojson"
    path.write_text(json.dumps({
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": UTM}},
        "features": [{"type": "Feature", "properties": {"class": "desert"},
                      "geometry": {"type": "Point", "coordinates": [x, y]}}],
    }))  # fmt: skip
    settings, labels = prepare_reference(str(path), "class", 0.5, {"class_scheme": "auto"})
    plan = pd.DataFrame({"chip_id": [CHIP], "crs": UTM, "row": [-8717], "col": [849]})
    predictions = spark.createDataFrame(
        pd.DataFrame(
            {"chip_id": [CHIP], "status": "scored", "predicted_label": "Forest", "run_id": "r"}
        )  # fmt: skip
    )
    with pytest.raises(ValueError) as error:
        assess_map(
            predictions, plan, scoring_run("r", "czech.tif"),
            SimpleNamespace(chip_px=64, resolution=10.0),
            ModelDescription("m", None, "LogisticRegressionModel", tuple(EUROSAT), "f", "test"),
            labels, None, settings,
        )  # fmt: skip
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("reference class(es) desert are not classes of the map")
    assert "assess.class_scheme" in message
