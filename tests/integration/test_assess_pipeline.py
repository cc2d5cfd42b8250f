"""`assess` end to end: train on the 300-tile sample, score the Czech scene, assess it against
the 218 reference squares. The sample model is far too weak for meaningful accuracies: this
proves the wiring (scoring outputs -> labels on the same chips -> estimates -> reports)."""

from __future__ import annotations

import json

import pytest
from conftest import CZECH_SCENE as SCENE
from conftest import SHARED_DATA, run_kedro

pytestmark = pytest.mark.slow

LABELS = SHARED_DATA / "labels" / "czech_west_labels.geojson"
REPORTS = "data/08_reporting/assessment"
KEYS = {
    "overall_accuracy", "users_accuracy", "producers_accuracy", "area_km2", "n_reference",
    "n_unscored", "error_matrix", "classes", "note",
}  # fmt: skip


def test_assess_the_czech_scene_against_reference_squares(trained_project):
    # class_scheme=coarse only satisfies validation.validate_run, which checks reference labels
    # against the *training* scheme whenever a pipeline reads reference_labels; assess maps
    # classes itself (assess.class_scheme) and scoring does not read class_scheme.
    run_kedro(
        trained_project,
        "assess",
        score_source=str(SCENE),
        reference_labels=str(LABELS),
        class_scheme="coarse",
    )
    reports = trained_project / REPORTS
    report = json.loads((reports / "accuracy.json").read_text())
    print(json.dumps({k: v for k, v in report.items() if k != "note"}, indent=1))

    assert KEYS <= set(report)
    assert report["run_id"].startswith("czech_s2_tci_20220319-")
    # The sample model speaks EuroSAT, the labels are coarse: grouped with the coarse scheme.
    assert report["class_scheme"] == "coarse"
    assert set(report["classes"]) <= {"built", "cropland", "forest", "grassland", "water"}
    # Every square is one chip: labelled chips = 218 - rejected labels, each used or unscored
    # (no training chips: this model learned from tile folders only).
    assert report["n_training_excluded"] == 0
    assert report["n_reference"] + report["n_unscored"] == 218 - report["n_rejected_labels"]
    assert report["n_reference"] > 150
    counts = report["error_matrix"]["counts"]
    assert sum(map(sum, counts)) == report["n_reference"]
    # Areas: estimates of the assessed strata + unsampled strata = mapped area = chips x 0.4096.
    areas = report["area_km2"]
    mapped = sum(a["mapped"] for a in areas.values())
    assert mapped == pytest.approx(report["mapped_area_km2"])
    estimated = sum(a["estimate"] for a in areas.values() if a["estimate"] is not None)
    assert estimated + report["unassessed_area_km2"] == pytest.approx(mapped)
    shares = json.loads(
        (trained_project / "data/08_reporting/maps" / SCENE.stem / "class_shares.json").read_text()
    )
    assert mapped / 0.4096 == pytest.approx(shares["chips"]["scored"])
    assert 0.0 <= report["overall_accuracy"]["estimate"] <= 1.0
    assert (reports / "accuracy.png").stat().st_size > 10_000
    assert (reports / "reference_chips.csv").read_text().count("\n") == 219 - report[
        "n_rejected_labels"
    ]
