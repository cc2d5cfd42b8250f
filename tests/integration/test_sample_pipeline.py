"""`sample` end to end on the trained sample model: score a crop of the Czech scene, then the
design beside its map; the same seed gives the same chips, and the scoring run is reused. Then
sample -> label -> assess: the design's chips labelled from the shared reference squares where
they coincide, assessed as the probability sample they are."""

from __future__ import annotations

import json
import logging

import pytest
from conftest import RASTERS, SHARED_DATA, crop_raster, run_kedro

pytestmark = pytest.mark.slow

# The north-west quarter: its top-left 6.4 km hold 78 of the reference squares.
QUARTER = RASTERS / "czech-2x2" / "czech_s2_tci_20220319.0.tif"
LABELS = SHARED_DATA / "labels" / "czech_west_labels.geojson"
PARAMS = {"sample.min_per_stratum": 3, "sample.target_se": 0.05}


@pytest.fixture(scope="module")
def sampled(trained_project, tmp_path_factory):
    """A 640 x 640 px crop scored and sampled once: ``(project, source, its maps folder)``."""
    source = crop_raster(QUARTER, tmp_path_factory.mktemp("crop") / "czech_sample_area.tif", 640, 640)
    run_kedro(trained_project, "sample", score_source=str(source), **PARAMS)
    return trained_project, source, trained_project / "data/08_reporting/maps" / source.stem


def test_the_design_lies_beside_the_map_and_is_reproducible(sampled):
    project, source, folder = sampled
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

    run_kedro(project, "sample", score_source=str(source), **PARAMS)
    again = json.loads((folder / "sample_design.geojson").read_text())["features"]
    assert [f["properties"]["chip_id"] for f in again] == [f["properties"]["chip_id"] for f in features]


def test_training_candidates_lie_beside_the_design_outside_it_and_outside_training(sampled):
    project, _, folder = sampled
    candidates = json.loads((folder / "training_candidates.geojson").read_text())["features"]
    design = json.loads((folder / "sample_design.json").read_text())
    drawn = {chip for chips in design["chip_ids"].values() for chip in chips}
    trained = (project / "data/06_models/efficientnet_lite0/reference_training_chips.csv").read_text()
    properties = [f["properties"] for f in candidates]
    assert 0 < len(properties) <= 20
    assert [p["rank"] for p in properties] == list(range(1, len(properties) + 1))
    assert not {p["chip_id"] for p in properties} & (drawn | set(trained.split()))
    assert all(p["class"] is None and 0 < p["confidence"] <= 1 for p in properties)


def reference_chip_classes() -> dict[str, str]:
    """chip_id -> class of the shared reference squares, on the scoring chip grid."""
    from aerial_kedro.chips.planning import PlanSettings
    from aerial_kedro.geo.label_chips import chips_for_labels
    from aerial_kedro.geo.label_files import read_reference_labels

    labels = read_reference_labels(str(LABELS), "class")
    chips, _ = chips_for_labels(labels, "EPSG:32633", PlanSettings().grid, min_cover=0.5)
    return dict(zip(chips["chip_id"], chips["label"], strict=True))


def test_a_labelled_design_is_assessed_as_a_probability_sample(sampled, tmp_path, caplog):
    project, source, folder = sampled
    design = json.loads((folder / "sample_design.json").read_text())
    collection = json.loads((folder / "sample_design.geojson").read_text())
    # The user's part, done by program: fill `class` where a reference square is the chip.
    truth = reference_chip_classes()
    for feature in collection["features"]:
        feature["properties"]["class"] = truth.get(feature["properties"]["chip_id"])
    labelled = tmp_path / "labelled_design.geojson"
    labelled.write_text(json.dumps(collection))
    given = {f["properties"]["chip_id"]: f["properties"] for f in collection["features"]}
    n_labelled = sum(p["class"] is not None for p in given.values())
    assert 0 < n_labelled < design["n_total"]  # some drawn chips have no reference square

    with caplog.at_level(logging.INFO, logger="aerial_kedro.pipelines.assess.nodes"):
        run_kedro(project, "assess", score_source=str(source), reference_labels=str(labelled))
    assert "Reference chips are a probability sample" in caplog.text

    reports = project / "data/08_reporting/assessment"
    report = json.loads((reports / "accuracy.json").read_text())
    assert report["sampling"] == "probability sample"
    assert report["note"].startswith("Probability sample") and "non-response" in report["note"]
    assert report["run_id"] == design["run_id"] and report["class_scheme"] == "coarse"
    tally = report["sample_design"]
    assert tally["n_drawn"] == design["n_total"]
    assert tally["n_labelled"] == report["n_reference"] == n_labelled  # no training chips here
    assert tally["n_not_labelled"] == design["n_total"] - n_labelled
    for stratum, row in tally["strata"].items():
        chips = [p for p in given.values() if p["stratum"] == stratum]
        assert row["mapped_chips"] == design["strata"][stratum]
        assert row["drawn"] == design["n_per_stratum"][stratum] == len(chips)
        assert row["inclusion_probability"] == pytest.approx(len(chips) / row["mapped_chips"])
        assert row["labelled"] == sum(p["class"] is not None for p in chips)
        assert tally["non_response"][stratum] == row["drawn"] - row["labelled"]
    counts = report["error_matrix"]["counts"]
    assert sum(map(sum, counts)) == n_labelled

    # Consistent with the design: each labelled chip of stratum h stands for N_h / m_h chips
    # (m_h = its labelled chips); strata with none are unassessed.
    coarse = {"AnnualCrop": "cropland", "PermanentCrop": "cropland", "Pasture": "grassland",
              "HerbaceousVegetation": "grassland", "Forest": "forest", "Highway": "built",
              "Industrial": "built", "Residential": "built", "River": "water", "SeaLake": "water"}  # fmt: skip
    chip_km2 = report["chip_area_km2"]
    expected = dict.fromkeys(report["classes"], 0.0)
    for stratum, row in tally["strata"].items():
        for p in given.values():
            if p["stratum"] == stratum and p["class"] is not None:
                expected[p["class"]] += row["mapped_chips"] / row["labelled"] * chip_km2
    for name, area in report["area_km2"].items():
        assert area["estimate"] == pytest.approx(expected[name])
        assert area["mapped"] == pytest.approx(
            sum(n for s, n in design["strata"].items() if coarse[s] == name) * chip_km2
        )
    unassessed = sum(r["mapped_chips"] for r in tally["strata"].values() if not r["labelled"])
    assert report["unassessed_area_km2"] == pytest.approx(unassessed * chip_km2)
    assert report["mapped_area_km2"] == pytest.approx(100 * chip_km2)
    assert (reports / "accuracy.png").stat().st_size > 10_000
