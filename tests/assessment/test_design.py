"""A `sample` design read back: the drawn chips, their labels, and the one-line refusals."""

from __future__ import annotations

import pandas as pd
import pytest

from aerial_kedro.assessment.design import (
    DrawnSample,
    SampleDesignError,
    check_against_design,
    design_labels,
    drawn_chips,
    is_design_table,
)

WHERE = "maps/scene/sample_design.json"
SUMMARY = {
    "run_id": "scene-abc",
    "score_source": "scene.tif",
    "seed": 7,
    "strata": {"Forest": 4, "AnnualCrop": 10},
    "n_per_stratum": {"Forest": 2, "AnnualCrop": 3},
    "chip_ids": {"Forest": ["f1", "f2"], "AnnualCrop": ["a1", "a2", "a3"]},
}


def table(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["chip_id", "stratum", "inclusion_probability", "class"])


def test_the_recorded_design_and_its_inclusion_probabilities():
    design = DrawnSample.from_summary(SUMMARY, WHERE)
    assert design.n_per_stratum == {"Forest": 2, "AnnualCrop": 3}
    assert design.inclusion_probability("Forest") == 0.5
    assert design.inclusion_probability("AnnualCrop") == 0.3
    assert design.chip_strata["a2"] == "AnnualCrop"


def test_a_design_without_its_chip_list_or_edited_is_refused():
    old = {k: v for k, v in SUMMARY.items() if k != "chip_ids"}
    with pytest.raises(SampleDesignError, match=f"^{WHERE} does not list the chips it drew"):
        DrawnSample.from_summary(old, WHERE)
    edited = {**SUMMARY, "chip_ids": {"Forest": ["f1"], "AnnualCrop": ["a1", "a2", "a3"]}}
    with pytest.raises(SampleDesignError, match="stratum 'Forest' lists 1 chips"):
        DrawnSample.from_summary(edited, WHERE)


def test_labels_empty_class_is_not_labelled_and_deleted_features_are_too():
    assert is_design_table(["chip_id", "stratum", "class", "geometry"])
    assert not is_design_table(["class", "geometry"])
    labels = design_labels(
        table([("f1", "Forest", 0.5, "forest"), ("f2", "Forest", 0.5, None),
               ("a1", "AnnualCrop", 0.3, " "), ("a2", "AnnualCrop", 0.3, "cropland")]),
        "labels.geojson", "class",
    )  # fmt: skip
    assert labels.chips["label"].tolist() == ["forest", None, None, "cropland"]
    assert labels.labelled["chip_id"].tolist() == ["f1", "a2"]
    design = DrawnSample.from_summary(SUMMARY, WHERE)
    check_against_design(labels, design, WHERE)
    chips = drawn_chips(labels, design)  # a3 was deleted from the file: not labelled either
    assert chips.to_dict("list") == {
        "chip_id": ["a1", "a2", "a3", "f1", "f2"],
        "stratum": ["AnnualCrop"] * 3 + ["Forest"] * 2,
        "label": [None, "cropland", None, "forest", None],
    }


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (("x9", "Forest", 0.5, "forest"), "chip x9 is not a chip of the sample design"),
        (("f1", "AnnualCrop", 0.3, "forest"), "chip f1 says stratum 'AnnualCrop', .* drew it in 'Forest'"),
        (("f1", "Forest", 0.25, "forest"), "chip f1 says inclusion probability 0.25, .* gives 0.5"),
    ],
)  # fmt: skip
def test_labels_that_disagree_with_the_design_name_file_and_chip(row, message):
    labels = design_labels(table([row]), "labels.geojson", "class")
    with pytest.raises(SampleDesignError, match=f"^reference labels 'labels.geojson': {message}"):
        check_against_design(labels, DrawnSample.from_summary(SUMMARY, WHERE), WHERE)


def test_a_chip_twice_or_without_id_or_class_field_is_refused():
    with pytest.raises(SampleDesignError, match="chip f1 appears more than once"):
        design_labels(table([("f1", "Forest", 0.5, "a"), ("f1", "Forest", 0.5, "b")]), "l", "class")
    with pytest.raises(SampleDesignError, match="feature 0 has no chip_id"):
        design_labels(table([(None, "Forest", 0.5, "a")]), "l", "class")
    with pytest.raises(SampleDesignError, match="class field 'landuse' does not exist"):
        design_labels(table([("f1", "Forest", 0.5, "a")]), "l", "landuse")
