"""`assess` nodes on the real Czech reference labels and the scene's chip grid, with a map made
up chip by chip (so every expected number can be counted by hand), in a real SparkSession."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import geopandas as gpd
import pandas as pd
import pytest
from conftest import SHARED_DATA, scoring_run
from matplotlib.figure import Figure

from aerial_kedro.chips.planning import PlanSettings
from aerial_kedro.chips.records import ModelDescription, ScoringRun
from aerial_kedro.datasets import OptionalDataset
from aerial_kedro.errors import ParameterError
from aerial_kedro.geo.grid import ChipGrid, chip_id, chips_inside
from aerial_kedro.geo.label_files import ReferenceLabelError
from aerial_kedro.pipelines.assess.nodes import (
    SAMPLING_NOTE,
    ScoredMap,
    assess_map,
    class_mapping,
    mlflow_metrics,
    plot_assessment,
    prepare_reference,
    report_context,
    validate_assess_params,
)

LABELS = SHARED_DATA / "labels" / "czech_west_labels.geojson"
SCENE_BOUNDS = (543100.0, 5567910.0, 560930.0, 5579500.0)  # czech_s2_tci_20220319.tif
UTM = "EPSG:32633"
GRID = ChipGrid(64, 10.0)
CHIP_KM2 = 0.4096
ASSESS = {"class_scheme": "auto", "exclude_training_chips": True}

pytestmark = pytest.mark.skipif(not LABELS.exists(), reason=f"{LABELS} missing")


@pytest.fixture(scope="module")
def reference():
    return prepare_reference(str(LABELS), "class", 0.5, ASSESS)


@pytest.fixture(scope="module")
def plan() -> pd.DataFrame:
    """The chips fully inside the Czech scene (what scoring plans when no edge chip is kept)."""
    rows, cols = chips_inside(SCENE_BOUNDS, GRID.size)
    ids = [(r, c) for r in rows for c in cols]
    return pd.DataFrame(
        {"chip_id": [chip_id(UTM, r, c) for r, c in ids], "crs": UTM, "row": [r for r, _ in ids]}
    )


def _made_up_map(plan: pd.DataFrame, labels) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """EuroSAT classes per chip: right on reference chips except chosen errors; Pasture elsewhere.

    Returns the predictions and the chip ids of each group the test counts on.
    """
    from aerial_kedro.geo.label_chips import chips_for_labels

    chips, _ = chips_for_labels(labels, UTM, GRID)
    inside = chips[chips["chip_id"].isin(plan["chip_id"])].sort_values("chip_id")
    by_class = {
        c: inside.loc[inside["label"] == c, "chip_id"].tolist()
        for c in ("cropland", "forest", "built")
    }
    groups = {
        "cropland_as_forest": by_class["cropland"][:5],
        "cropland_empty": by_class["cropland"][5:8],
        "cropland_training": by_class["cropland"][8:12],
        "forest_as_permanent_crop": by_class["forest"][:2],
    }
    predicted = dict.fromkeys(plan["chip_id"], "Pasture")
    predicted.update(dict.fromkeys(by_class["cropland"], "AnnualCrop"))
    predicted.update(dict.fromkeys(by_class["forest"], "Forest"))
    predicted.update(dict.fromkeys(by_class["built"], "Industrial"))
    predicted.update(dict.fromkeys(groups["cropland_as_forest"], "Forest"))
    predicted.update(dict.fromkeys(groups["forest_as_permanent_crop"], "PermanentCrop"))
    frame = pd.DataFrame({"chip_id": list(predicted), "predicted_label": list(predicted.values())})
    frame["status"] = "scored"
    empty = frame["chip_id"].isin(groups["cropland_empty"])
    frame.loc[empty, "status"] = "empty"
    frame.loc[empty, "predicted_label"] = None
    frame["run_id"] = "czech-test"
    groups["inside"] = inside["chip_id"].tolist()
    return frame, groups


def test_assess_map_counts_and_estimates(spark, reference, plan):
    settings, labels = reference
    frame, groups = _made_up_map(plan, labels)
    other_run = frame.assign(run_id="another-run", predicted_label="Forest")
    predictions = spark.createDataFrame(pd.concat([frame, other_run], ignore_index=True))
    training = pd.DataFrame({"chip_id": groups["cropland_training"]})

    report, chips, rejected, metrics = assess_map(
        predictions,
        plan,
        scoring_run("czech-test", "czech.tif"),
        SimpleNamespace(plan=PlanSettings()),  # the scoring settings' part assess reads
        ModelDescription("logistic_regression", None, "LogisticRegressionModel", (),
                         "efficientnet_lite0", "test"),
        labels,
        training,
        settings,
    )

    assert len(groups["inside"]) == 207  # 218 squares, 11 on the top row stick out of the scene
    assert report["n_unscored"] == 11 + 3  # outside every raster + empty
    assert report["unscored"] == {"outside": 11, "empty": 3}
    assert report["n_training_excluded"] == 4
    assert report["n_reference"] == 207 - 3 - 4 == 200
    assert report["n_reference"] + report["n_unscored"] + report["n_training_excluded"] == 218
    assert report["n_rejected_labels"] == 11 and len(rejected) == 11
    assert rejected["reason"].str.startswith("outside every raster (chip 32633_-8718_").all()
    assert report["class_scheme"] == "coarse"  # EuroSAT map vs coarse reference: auto
    assert report["classes"] == ["built", "cropland", "forest", "grassland"]

    # Counted by hand: cropland used 186-3-4 = 179 (5 mapped forest); forest 15 (2 mapped
    # cropland via PermanentCrop); built 6. Rows = map, columns = reference.
    assert report["error_matrix"]["counts"] == [
        [6, 0, 0, 0],
        [0, 174, 2, 0],
        [0, 5, 13, 0],
        [0, 0, 0, 0],
    ]
    assert report["users_accuracy"]["cropland"]["estimate"] == pytest.approx(174 / 176)
    assert report["users_accuracy"]["forest"]["estimate"] == pytest.approx(13 / 18)
    assert report["users_accuracy"]["grassland"] is None  # mapped, never sampled

    # Strata = scored chips per coarse map class (the run's own rows only) x 0.4096 km2.
    scored = frame[frame["status"] == "scored"]
    coarse = {"AnnualCrop": "cropland", "PermanentCrop": "cropland", "Forest": "forest",
              "Industrial": "built", "Pasture": "grassland"}  # fmt: skip
    chips_per_class = scored["predicted_label"].map(coarse).value_counts()
    for name in ("built", "cropland", "forest", "grassland"):
        assert report["area_km2"][name]["mapped"] == pytest.approx(chips_per_class[name] * CHIP_KM2)
    mapped_total = len(scored) * CHIP_KM2
    assert report["mapped_area_km2"] == pytest.approx(mapped_total)
    assert report["unsampled_strata"] == ["grassland"]
    assert report["unassessed_area_km2"] == pytest.approx(chips_per_class["grassland"] * CHIP_KM2)
    estimated = sum(a["estimate"] for a in report["area_km2"].values())
    assert estimated + report["unassessed_area_km2"] == pytest.approx(mapped_total)

    # Producer's accuracy of forest by hand: W over the sampled strata (built, cropland, forest).
    a_c, a_f = chips_per_class["cropland"], chips_per_class["forest"]
    a_b = chips_per_class["built"]
    w_c, w_f = a_c / (a_b + a_c + a_f), a_f / (a_b + a_c + a_f)
    p_ff, p_cf = w_f * 13 / 18, w_c * 2 / 176
    assert report["producers_accuracy"]["forest"]["estimate"] == pytest.approx(p_ff / (p_ff + p_cf))
    assert report["overall_accuracy"]["ci95"] is not None
    assert report["note"] == SAMPLING_NOTE

    assert len(chips) == 218
    assert chips["use"].value_counts().to_dict() == {
        "reference": 200,
        "unscored": 14,
        "training": 4,
    }
    json.dumps(report)
    assert metrics["overall_accuracy"]["value"] == report["overall_accuracy"]["estimate"]
    assert "users_accuracy.grassland" not in metrics  # None is not logged
    assert isinstance(plot_assessment(report), Figure)


def test_class_mapping_choices():
    eurosat = ["AnnualCrop", "Forest", "Pasture"]
    assert class_mapping(eurosat, ["cropland", "forest"], "auto")[0] == "coarse"
    scheme, mapping = class_mapping(eurosat, ["Forest"], "auto")
    assert scheme == "none" and mapping["Forest"] == "Forest"
    scheme, mapping = class_mapping(["cropland", "forest"], ["forest"], "auto")
    assert scheme == "none"
    assert class_mapping(eurosat, ["AnnualCrop"], "coarse")[1]["AnnualCrop"] == "cropland"
    with pytest.raises(ValueError, match="reference class 'wetland' is not in the class scheme"):
        class_mapping(eurosat, ["wetland"], "coarse")


def test_parameter_errors_name_the_key():
    with pytest.raises(ParameterError, match="^reference_labels: not set"):
        validate_assess_params(None, "class", 0.5, ASSESS)
    with pytest.raises(ParameterError, match=r"^min_cover: 1.5 is outside \(0, 1\]"):
        validate_assess_params("x.geojson", "class", 1.5, ASSESS)
    with pytest.raises(ParameterError, match="^assess.exclude_training_chips"):
        validate_assess_params("x.geojson", "class", 0.5, {"exclude_training_chips": "yes"})
    with pytest.raises(ParameterError, match="^assess.class_scheme: 'fine' is not allowed"):
        validate_assess_params("x.geojson", "class", 0.5, {"class_scheme": "fine"})
    with pytest.raises(
        ReferenceLabelError, match="class field 'landuse' does not exist; fields: class"
    ):
        prepare_reference(str(LABELS), "landuse", 0.5, ASSESS)


def test_missing_training_chips_table_loads_as_none(tmp_path):
    dataset = OptionalDataset(
        dataset={"type": "pandas.CSVDataset", "filepath": str(tmp_path / "chips.csv")}
    )
    assert dataset.load() is None
    dataset.save(pd.DataFrame({"chip_id": ["32633_-8717_849"]}))
    assert dataset.load()["chip_id"].tolist() == ["32633_-8717_849"]


def test_mlflow_metrics_leave_out_what_was_not_estimated():
    report = {
        "n_reference": 3,
        "n_unscored": 1,
        "overall_accuracy": None,
        "users_accuracy": {"forest": {"estimate": 1.0}, "water body": None},
        "producers_accuracy": {"forest": None, "water body": None},
        "area_km2": {"forest": {"estimate": 2.0, "ci95": None}},
    }
    assert mlflow_metrics(report) == {
        "n_reference": {"value": 3.0, "step": 0},
        "n_unscored": {"value": 1.0, "step": 0},
        "users_accuracy.forest": {"value": 1.0, "step": 0},
        "area_km2.forest": {"value": 2.0, "step": 0},
    }


# --------------------------------------------------------------------------- a sample design's labels

DESIGN_RUN = scoring_run("design-run")
DESIGN_PARAMS = {"target_se": 0.1, "min_per_stratum": 5, "expected_users_accuracy": 0.8, "seed": 3}


def _design_map(spark) -> tuple[Any, pd.DataFrame]:
    """A scored run of 100 chips (AnnualCrop 60, PermanentCrop 20, Forest 20) and its plan."""
    classes = ["AnnualCrop"] * 60 + ["PermanentCrop"] * 20 + ["Forest"] * 20
    rows = []
    for n, label in enumerate(classes):
        x, y = 500_000 + 640 * (n % 10), 5_500_000 + 640 * (n // 10)
        rows.append(("design-run", f"c{n:03d}", "scored", label, UTM, x, y, x + 640, y + 640))
    columns = ["run_id", "chip_id", "status", "predicted_label", "crs", "minx", "miny", "maxx", "maxy"]
    frame = pd.DataFrame(rows, columns=columns)
    plan = frame[["chip_id", "crs"]].assign(row=[n // 10 for n in range(100)], col=[n % 10 for n in range(100)])
    return spark.createDataFrame(frame), plan


@pytest.fixture(scope="module")
def design_run(spark, tmp_path_factory):
    """The map, the design `sample` draws of it, and its GeoJSON labelled as the test says."""
    from aerial_kedro.pipelines.sample.nodes import (
        draw_sample,
        mapped_chips,
        plan_sample,
        sample_products,
        validate_sample_params,
    )

    predictions, plan = _design_map(spark)
    chips = mapped_chips(predictions, DESIGN_RUN)
    design = plan_sample(chips, validate_sample_params(DESIGN_PARAMS))
    collection, summary = sample_products(draw_sample(chips, design), design, DESIGN_RUN)
    return predictions, plan, collection, summary, tmp_path_factory.mktemp("design")


def _label(collection: dict, summary: dict, folder) -> tuple[str, dict[str, list[str]]]:
    """AnnualCrop: first chip unlabelled, the others cropland. PermanentCrop: the first forest,
    the rest cropland. Forest: the first cropland, the last deleted from the file, the rest forest."""
    ids = summary["chip_ids"]
    labels = {c: "cropland" for c in ids["AnnualCrop"][1:]}
    labels.update({c: "cropland" for c in ids["PermanentCrop"]}, **{ids["PermanentCrop"][0]: "forest"})
    labels.update({c: "forest" for c in ids["Forest"][1:-1]}, **{ids["Forest"][0]: "cropland"})
    features = []
    for feature in collection["features"]:
        chip = feature["properties"]["chip_id"]
        if chip == ids["Forest"][-1]:
            continue
        features.append({**feature, "properties": {**feature["properties"], "class": labels.get(chip)}})
    path = folder / "labelled_design.geojson"
    path.write_text(json.dumps({**collection, "features": features}))
    return str(path), ids


def test_a_labelled_sample_design_is_assessed_as_a_probability_sample(design_run):
    predictions, plan, collection, summary, folder = design_run
    # eq. 13: (0.4 / 0.1)^2 = 16; PermanentCrop and Forest (3.2 by area) lifted to 5, AnnualCrop 6.
    assert summary["n_per_stratum"] == {"AnnualCrop": 6, "Forest": 5, "PermanentCrop": 5}
    path, ids = _label(collection, summary, folder)
    settings, labels = prepare_reference(path, "class", 0.5, ASSESS)
    # Training chips: one drawn AnnualCrop chip (labelled) and one Forest chip not drawn.
    undrawn_forest = next(f"c{n:03d}" for n in range(80, 100) if f"c{n:03d}" not in ids["Forest"])
    training = pd.DataFrame({"chip_id": [ids["AnnualCrop"][1], undrawn_forest]})

    report, chips, rejected, metrics = assess_map(
        predictions, plan, DESIGN_RUN, SimpleNamespace(plan=PlanSettings()),
        ModelDescription("logistic_regression", None, "LogisticRegressionModel", (), "efficientnet_lite0", "test"),
        labels, training, settings, summary,
    )  # fmt: skip

    assert report["sampling"] == "probability sample"
    assert report["note"].startswith("Probability sample") and "non-response" in report["note"]
    assert report["class_scheme"] == "coarse" and report["classes"] == ["cropland", "forest"]
    design = report["sample_design"]
    assert design["n_drawn"] == 16 and design["n_labelled"] == 13 and design["n_not_labelled"] == 2
    assert design["non_response"] == {"AnnualCrop": 1, "Forest": 1, "PermanentCrop": 0}
    assert design["strata"]["AnnualCrop"] == {
        "mapped_chips": 60, "drawn": 6, "inclusion_probability": 0.1, "labelled": 4,
        "not_labelled": 1, "training_drawn": 1, "training_chips": 1,
    }  # fmt: skip
    assert design["strata"]["Forest"]["training_chips"] == 1
    assert chips["use"].value_counts().to_dict() == {"reference": 13, "not labelled": 2, "training": 1}
    assert report["n_reference"] == 13 and report["n_training_excluded"] == 1 and len(rejected) == 0
    # Rows = map class (strata summed): cropland 4 + 4 cropland, 1 forest; forest 1, 3.
    assert report["error_matrix"]["counts"] == [[8, 1], [1, 3]]

    # By hand: N_h less training chips = 59, 20, 19 (98 chips); labelled n_h = 4, 5, 4.
    cropland = (59 * 1 + 20 * 4 / 5 + 19 * 1 / 4) / 98
    assert report["area_km2"]["cropland"]["estimate"] == pytest.approx(cropland * 98 * CHIP_KM2)
    assert report["overall_accuracy"]["estimate"] == pytest.approx((59 + 20 * 0.8 + 19 * 0.75) / 98)
    assert report["users_accuracy"]["cropland"]["estimate"] == pytest.approx((59 + 20 * 0.8) / 79)
    variance = (20 / 98) ** 2 * 0.16 * (1 - 5 / 20) / 4 + (19 / 98) ** 2 * 0.1875 * (1 - 4 / 19) / 3
    assert report["overall_accuracy"]["se"] == pytest.approx(variance**0.5)
    # Mapped = the design's strata; the two training chips' area is unassessed.
    assert report["area_km2"]["cropland"]["mapped"] == pytest.approx(80 * CHIP_KM2)
    assert report["unassessed_area_km2"] == pytest.approx(2 * CHIP_KM2)
    estimated = sum(a["estimate"] for a in report["area_km2"].values())
    assert estimated + report["unassessed_area_km2"] == pytest.approx(100 * CHIP_KM2)
    assert metrics["overall_accuracy"]["value"] == report["overall_accuracy"]["estimate"]
    figure = plot_assessment(report)
    assert "probability sample (2 of 16 drawn not labelled)" in figure.axes[1].get_title()


def test_design_labels_need_their_design_from_the_same_run(design_run):
    predictions, plan, collection, summary, folder = design_run
    path, _ = _label(collection, summary, folder)
    settings, labels = prepare_reference(path, "class", 0.5, ASSESS)
    args = (predictions, plan, DESIGN_RUN, SimpleNamespace(plan=PlanSettings()), None, labels, None, settings)
    with pytest.raises(ValueError, match=r"carry chip_id and stratum .* no maps/scene/sample_design.json"):
        assess_map(*args, None)
    with pytest.raises(ValueError, match="was drawn from scoring run older-run, but the map is now run design-run"):
        assess_map(*args, {**summary, "run_id": "older-run"})
    moved = {**summary, "chip_ids": {**summary["chip_ids"], "Forest": ["c000", *summary["chip_ids"]["Forest"][1:]]}}
    with pytest.raises(ValueError, match="chip c000 is not a chip of the sample design|chip .* says stratum"):
        assess_map(*args, moved)
    # Opting out reads the same file as hand-picked labels: its empty classes are then refused.
    with pytest.raises(ReferenceLabelError, match="have no 'class'"):
        prepare_reference(path, "class", 0.5, {**ASSESS, "use_sample_design": False})


def test_hand_picked_labels_keep_their_wording(reference):
    settings, labels = reference
    assert isinstance(labels, gpd.GeoDataFrame)
    assert "not a probability sample" in SAMPLING_NOTE


def test_the_scored_map_is_read_from_the_records():
    run = ScoringRun(
        run_id="czech-test", source="czech.tif", source_name="czech", kind="rasters", n_items=4,
        n_chunks=1, n_inputs=1, n_rejected=0, radiometry=None, chip_stride_px=None,
        max_empty_fraction=0.5, radiometry_reference=None, radiometry_fit=None, started_at="t",
    )  # fmt: skip
    model = ModelDescription("logistic_regression", None, "LogisticRegressionModel",
                             ("Forest", "River"), "efficientnet_lite0", "uid|sha")  # fmt: skip
    scored = ScoredMap("czech-test", "czech.tif", "rasters", "logistic_regression",
                       "efficientnet_lite0", ("Forest", "River"))  # fmt: skip
    assert ScoredMap.of(run, model) == scored
    assert ScoredMap.of(ScoringRun.from_dict(run.to_dict()), ModelDescription.from_dict(model.to_dict())) == scored
    assert ScoredMap.of(run, None) == ScoredMap("czech-test", "czech.tif", "rasters", None, None, ())


def test_both_reports_name_what_was_assessed_in_the_same_order(reference):
    settings, _ = reference
    scored = ScoredMap("r", "czech.tif", "rasters", "m", "f", ())
    args = (scored, settings, "coarse", {"Forest": "forest", "x": "x"}, GRID, CHIP_KM2, 7)
    head = ["run_id", "score_source", "model", "featurizer", "reference_labels", "class_field"]
    tail = ["class_scheme", "class_mapping", "chip_size_m", "chip_area_km2", "n_labels"]
    hand_picked = report_context(*args, settings.min_cover)
    assert list(hand_picked) == [*head, "min_cover", *tail]
    assert hand_picked["min_cover"] == 0.5 and hand_picked["class_mapping"] == {"Forest": "forest"}
    assert list(report_context(*args)) == [*head, *tail]  # a design's chips: no min_cover
