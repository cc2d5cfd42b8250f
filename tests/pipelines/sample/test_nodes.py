"""`sample` nodes on a generated scoring run: sizes per mapped class, a reproducible draw."""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import scoring_run

from aerial_kedro.errors import ParameterError
from aerial_kedro.pipelines.sample.nodes import (
    draw_sample,
    mapped_chips,
    plan_sample,
    sample_products,
    validate_sample_params,
)

RUN = scoring_run("scene-abc")
PARAMS = {"target_se": 0.05, "min_per_stratum": 5, "expected_users_accuracy": 0.8, "seed": 7}


def predictions(spark, classes: dict[str, int], run_id: str = "scene-abc"):
    """Scored chips of one run on a 640 m grid in UTM 33N, plus an unreadable one and another run."""
    rows = []
    for label, count in classes.items():
        for _ in range(count):
            n = len(rows)
            x, y = 500_000 + 640 * (n % 20), 5_500_000 + 640 * (n // 20)
            rows.append((run_id, f"c{n:04d}", "scored", label, "EPSG:32633", x, y, x + 640, y + 640))
    rows.append((run_id, "bad", "unreadable", None, "EPSG:32633", 0, 0, 640, 640))
    rows.append(("other-run", "c9999", "scored", "Forest", "EPSG:32633", 0, 0, 640, 640))
    columns = "run_id string, chip_id string, status string, predicted_label string, crs string, minx double, miny double, maxx double, maxy double"
    return spark.createDataFrame(pd.DataFrame(rows, columns=[c.split()[0] for c in columns.split(", ")]), columns)


def test_sizes_per_mapped_class_and_a_reproducible_draw(spark):
    chips = mapped_chips(predictions(spark, {"Forest": 30, "AnnualCrop": 150, "SeaLake": 3}), RUN)
    settings = validate_sample_params(PARAMS)
    design = plan_sample(chips, settings)
    assert design.strata == {"AnnualCrop": 150, "Forest": 30, "SeaLake": 3}
    # eq. 13: every S_i = sqrt(0.8 x 0.2) = 0.4, so n = (0.4 / 0.05)^2 = 64; SeaLake (1 by area)
    # gets all its 3 chips, the other 61 follow area: AnnualCrop 51, Forest 10.
    assert design.n_formula == 64
    assert design.n_per_stratum["SeaLake"] == 3 and design.n_total == 64
    drawn = draw_sample(chips, design)
    assert drawn.groupby("predicted_label").size().to_dict() == design.n_per_stratum
    assert drawn["chip_id"].is_unique and "bad" not in set(drawn["chip_id"])
    again = draw_sample(chips.repartition(5), design)
    pd.testing.assert_frame_equal(drawn, again)  # seeded: the partitioning does not matter
    other = draw_sample(chips, plan_sample(chips, validate_sample_params({**PARAMS, "seed": 8})))
    assert set(other["chip_id"]) != set(drawn["chip_id"])


def test_products_carry_strata_inclusion_probabilities_and_an_empty_class(spark):
    chips = mapped_chips(predictions(spark, {"Forest": 30, "AnnualCrop": 150}), RUN)
    design = plan_sample(chips, validate_sample_params(PARAMS))
    collection, summary = sample_products(draw_sample(chips, design), design, RUN)
    assert len(collection["features"]) == summary["n_total"] == design.n_total
    first = collection["features"][0]
    assert set(first["properties"]) == {"chip_id", "stratum", "inclusion_probability", "class"}
    assert first["properties"]["class"] is None
    forest = [f for f in collection["features"] if f["properties"]["stratum"] == "Forest"]
    assert forest[0]["properties"]["inclusion_probability"] == design.n_per_stratum["Forest"] / 30
    lon, lat = forest[0]["geometry"]["coordinates"][0][0]
    assert 14 < lon < 16 and 49 < lat < 50  # UTM 33N near 500 km E, 5,500 km N, in lon/lat
    assert summary["run_id"] == "scene-abc" and summary["seed"] == 7
    assert summary["weights"]["Forest"] == pytest.approx(30 / 180)
    # The drawn chips per stratum, which `assess` checks labelled files against.
    by_stratum: dict[str, list[str]] = {}
    for feature in collection["features"]:
        by_stratum.setdefault(feature["properties"]["stratum"], []).append(feature["properties"]["chip_id"])
    assert summary["chip_ids"] == by_stratum


def test_a_bad_parameter_is_one_line_naming_the_key():
    with pytest.raises(ParameterError, match=r"^sample\.target_se: .*outside"):
        validate_sample_params({**PARAMS, "target_se": 0})
    with pytest.raises(ParameterError, match=r"^sample\.expected_users_accuracy: '1.5' is not a user's accuracy"):
        validate_sample_params({**PARAMS, "expected_users_accuracy": 1.5})


def test_plain_tiles_are_refused_naming_the_source(spark):
    with pytest.raises(ValueError, match="plain tiles without georeference"):
        mapped_chips(predictions(spark, {"Forest": 2}), scoring_run("scene-abc", kind="tiles"))
