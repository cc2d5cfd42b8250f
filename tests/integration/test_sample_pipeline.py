"""`sample` end to end on the trained sample model: score a crop of the Czech scene, then the
design beside its map; the same seed gives the same chips, and the scoring run is reused."""

from __future__ import annotations

import json

import pytest
from conftest import RASTERS, crop_raster, run_kedro

pytestmark = pytest.mark.slow

QUARTER = RASTERS / "czech-2x2" / "czech_s2_tci_20220319.1.tif"


def test_the_design_lies_beside_the_map_and_is_reproducible(trained_project, tmp_path):
    source = crop_raster(QUARTER, tmp_path / "czech_sample_area.tif", 640, 640)  # 100 chips
    params = {"score_source": str(source), "sample.min_per_stratum": 3, "sample.target_se": 0.05}
    run_kedro(trained_project, "sample", **params)
    folder = trained_project / "data/08_reporting/maps" / source.stem
    design = json.loads((folder / "sample_design.json").read_text())
    shares = json.loads((folder / "class_shares.json").read_text())
    assert sum(design["strata"].values()) == shares["chips"]["scored"] == 100
    assert design["n_total"] == sum(design["n_per_stratum"].values()) >= design["n_formula"] > 0
    features = json.loads((folder / "sample_design.geojson").read_text())["features"]
    assert len(features) == design["n_total"]
    per_stratum: dict[str, int] = {}
    for feature in features:
        per_stratum[feature["properties"]["stratum"]] = per_stratum.get(feature["properties"]["stratum"], 0) + 1
    assert per_stratum == {k: v for k, v in design["n_per_stratum"].items() if v}
    assert design["run_id"] == shares["run_id"]

    run_kedro(trained_project, "sample", **params)
    again = json.loads((folder / "sample_design.geojson").read_text())["features"]
    assert [f["properties"]["chip_id"] for f in again] == [f["properties"]["chip_id"] for f in features]
