"""Chip table: every chip of either date is reported with the right status; only chips seen on
both dates get a change score; cloudy chips never change. Then transitions and areas."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aerial_kedro.change.appearance import AppearanceCriteria
from aerial_kedro.change.table import ChangeCriteria, chip_changes, status_counts, with_appearance
from aerial_kedro.change.transitions import chip_areas_km2, transition_summary
from aerial_kedro.geo.palette import EUROSAT_CLASSES

CRS = "EPSG:32633"
SIZE = 640.0


def plan(cells: list[tuple[int, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"chip_id": f"32633_{r}_{c}", "crs": CRS, "row": r, "col": c,
             "minx": c * SIZE, "miny": -(r + 1) * SIZE, "maxx": (c + 1) * SIZE, "maxy": -r * SIZE,
             "lon": 15.0, "lat": 50.0, "chip_px": 64, "resolution": 10.0}
            for r, c in cells
        ]
    )  # fmt: skip


def probs(name: str) -> list[float]:
    p = [0.0] * 10
    p[EUROSAT_CLASSES.index(name)] = 1.0
    return p


def outcome(date: str, cell: tuple[int, int], status: str, label: str | None = None,
            cloud: float | None = 0.0) -> dict:  # fmt: skip
    return {
        "chip_id": f"32633_{cell[0]}_{cell[1]}",
        f"status_{date}": status,
        f"predicted_label_{date}": label,
        f"class_index_{date}": EUROSAT_CLASSES.index(label) if label else None,
        f"confidence_{date}": 1.0 if label else None,
        f"probabilities_{date}": probs(label) if label else None,
        f"cloud_fraction_{date}": cloud,
    }


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    before_cells = [(-10, 1), (-10, 2), (-10, 3), (-10, 4), (-10, 5), (-10, 6), (-10, 7), (-10, 8)]
    after_cells = before_cells[1:] + [(-10, 9)]
    before = pd.DataFrame([
        outcome("before", (-10, 1), "scored", "Forest"),           # before only
        outcome("before", (-10, 2), "scored", "AnnualCrop"),       # crop swap: no change
        outcome("before", (-10, 3), "scored", "AnnualCrop"),       # field -> houses
        outcome("before", (-10, 4), "scored", "AnnualCrop", 0.9),  # cloudy before
        outcome("before", (-10, 5), "empty"),                      # empty before
        outcome("before", (-10, 6), "unreadable"),
        outcome("before", (-10, 7), "scored", "Forest"),           # after pending
        outcome("before", (-10, 8), "scored", "River"),            # no cloud measure: NaN
    ])  # fmt: skip
    after = pd.DataFrame([
        outcome("after", (-10, 2), "scored", "PermanentCrop"),
        outcome("after", (-10, 3), "scored", "Residential"),
        outcome("after", (-10, 4), "scored", "Residential"),
        outcome("after", (-10, 5), "scored", "Forest"),
        outcome("after", (-10, 6), "scored", "Forest"),
        outcome("after", (-10, 8), "scored", "SeaLake", None),
        outcome("after", (-10, 9), "scored", "Industrial"),        # after only
    ])  # fmt: skip
    joined = before.merge(after, on="chip_id", how="outer")
    settings = ChangeCriteria(threshold=0.5, max_cloud_fraction=0.3)
    return chip_changes(joined, plan(before_cells), plan(after_cells), EUROSAT_CLASSES, settings)


def row(table: pd.DataFrame, col: int) -> pd.Series:
    return table.set_index("chip_id").loc[f"32633_-10_{col}"]


def test_every_chip_of_either_date_has_one_row_with_its_status(table):
    assert len(table) == 9 and table["chip_id"].is_unique
    expected = {1: "before_only", 2: "both_scored", 3: "both_scored", 4: "cloudy", 5: "empty",
                6: "unreadable", 7: "pending", 8: "both_scored", 9: "after_only"}  # fmt: skip
    assert {c: row(table, c)["status"] for c in expected} == expected
    assert row(table, 7)["status_after"] == "pending"
    assert row(table, 1)["status_after"] == "absent"
    assert status_counts(table)["planned"] == 9


def test_score_only_where_both_dates_saw_land_and_clouds_never_change(table):
    scored = table["change_score"].notna()
    assert set(table.loc[scored, "status"]) == {"both_scored"}
    assert row(table, 2)["change_score"] == pytest.approx(0.0)  # AnnualCrop -> PermanentCrop
    assert row(table, 3)["change_score"] == pytest.approx(1.0)
    assert row(table, 8)["change_score"] == pytest.approx(0.0)  # River -> SeaLake, both water
    assert table.loc[table["changed"], "chip_id"].tolist() == ["32633_-10_3"]
    cloudy = row(table, 4)
    assert not cloudy["changed"] and np.isnan(cloudy["change_score"])
    assert cloudy["class_after"] == "Residential"  # reported, not hidden


def test_classes_of_one_date_only_are_kept(table):
    assert row(table, 1)["class_before"] == "Forest" and row(table, 1)["class_after"] is None
    assert row(table, 9)["coarse_after"] == "built"
    assert row(table, 3)["coarse_before"] == "cropland"
    assert row(table, 3)["probabilities_after"]["Residential"] == 1.0  # named, for Parquet
    assert row(table, 9)["probabilities_before"] is None


def test_require_class_change_and_floor_change_the_flag():
    joined = pd.DataFrame([outcome("before", (0, 0), "scored", "AnnualCrop")]).merge(
        pd.DataFrame([outcome("after", (0, 0), "scored", "Pasture")]), on="chip_id"
    )
    joined["probabilities_after"] = [[0.45] + [0.0] * 4 + [0.55] + [0.0] * 4]
    cells = plan([(0, 0)])
    loose = chip_changes(joined, cells, cells, EUROSAT_CLASSES, ChangeCriteria(threshold=0.5))
    assert loose["changed"].item() and loose["change_score"].item() == pytest.approx(0.55)
    strict = chip_changes(joined, cells, cells, EUROSAT_CLASSES,
                          ChangeCriteria(threshold=0.5, confidence_floor=0.6))  # fmt: skip
    assert strict["change_score"].item() == 0.0 and not strict["changed"].item()


def test_a_chip_scored_but_in_no_plan_is_an_error():
    joined = pd.DataFrame([outcome("before", (5, 5), "scored", "Forest")])
    with pytest.raises(ValueError, match="in no plan"):
        chip_changes(joined, plan([(0, 0)]), plan([(0, 0)]), EUROSAT_CLASSES, ChangeCriteria())


def test_transitions_count_only_changed_chips_as_moving_area(table):
    summary = transition_summary(table, ["forest", "cropland", "grassland", "built", "water"])
    chip_km2 = 0.4096
    assert summary["transitions"] == [
        {"from": "cropland", "to": "built", "chips": 1, "km2": chip_km2}
    ]
    assert summary["net_change_km2"]["built"] == pytest.approx(chip_km2)
    assert summary["net_change_km2"]["cropland"] == pytest.approx(-chip_km2)
    assert summary["compared_km2"] == pytest.approx(3 * chip_km2)
    assert np.trace(np.array(summary["detected"]["chips"])) == 2
    assert summary["chips"]["cloudy"] == 1


def test_areas_projected_and_geographic():
    utm = plan([(0, 0)])
    assert chip_areas_km2(utm) == pytest.approx([0.4096])
    geo = pd.DataFrame([{"crs": "EPSG:4326", "minx": 15.0, "miny": 50.0, "maxx": 15.01,
                         "maxy": 50.01}])  # fmt: skip
    # 0.01 deg lat ~ 1.112 km, 0.01 deg lon at 50 N ~ 0.715 km
    assert chip_areas_km2(geo) == pytest.approx([0.795], rel=0.01)


def test_appearance_context_comes_from_the_compared_chips_around_each_on_the_grid():
    cells = [(r, c) for r in range(6) for c in range(6)]
    outcomes = [
        {**outcome("before", cell, "scored", "AnnualCrop", 0.9 if cell == (4, 3) else 0.0),
         **{k: v for k, v in outcome("after", cell, "scored", "AnnualCrop").items()
            if k != "chip_id"}}
        for cell in cells
    ]  # fmt: skip
    criteria = ChangeCriteria(threshold=0.5, max_cloud_fraction=0.3)
    table = chip_changes(
        pd.DataFrame(outcomes), plan(cells), plan(cells), EUROSAT_CLASSES, criteria
    )
    assert row_at(table, 4, 3)["status"] == "cloudy"
    compared = table[table["status"] == "both_scored"]
    colour = np.linspace(1.0, 1.3, len(compared))  # an unchanged scene, a little spread
    site = {(0, 0), (0, 1), (1, 0), (1, 1)}  # a changed area of 2 x 2 chips
    ids = compared["chip_id"].tolist()
    for i, chip in enumerate(ids):
        r, c = map(int, chip.split("_")[1:])
        colour[i] = 3.0 if (r, c) in site else 3.2 if (r, c) == (4, 4) else colour[i]
    appearance = pd.DataFrame({"chip_id": ids, "colour_change": colour, "texture_change": 0.0})
    plain = with_appearance(table, appearance, criteria, AppearanceCriteria(threshold_z=3.0))
    context = with_appearance(
        table, appearance, criteria, AppearanceCriteria(threshold_z=3.0, context_weight=0.5)
    )
    assert row_at(plain, 4, 4)["change_score"] > row_at(plain, 1, 1)["change_score"]
    assert row_at(context, 1, 1)["change_score"] > row_at(context, 4, 4)["change_score"]
    # The cloudy chip has no score, lends none to (4, 4) and is never changed.
    assert np.isnan(row_at(context, 4, 3)["change_score"]) and not row_at(context, 4, 3)["changed"]
    flagged = {
        tuple(map(int, c.split("_")[1:])) for c in context.loc[context["changed"], "chip_id"]
    }
    assert site <= flagged


def row_at(table: pd.DataFrame, r: int, c: int) -> pd.Series:
    return table.set_index("chip_id").loc[f"32633_{r}_{c}"]


def test_chips_next_to_a_cloudy_chip_are_cloudy_too_with_cloud_neighbours():
    cells = [(r, c) for r in range(5) for c in range(5)]
    outcomes = [
        {**outcome("before", cell, "scored", "AnnualCrop", 0.6 if cell == (2, 2) else 0.0),
         **{k: v for k, v in outcome("after", cell, "scored", "Forest").items() if k != "chip_id"}}
        for cell in cells
    ]  # fmt: skip
    alone = ChangeCriteria(threshold=0.5, max_cloud_fraction=0.3)
    table = chip_changes(pd.DataFrame(outcomes), plan(cells), plan(cells), EUROSAT_CLASSES, alone)
    assert set(table.loc[table["status"] == "cloudy", "chip_id"]) == {"32633_2_2"}
    grown = ChangeCriteria(threshold=0.5, max_cloud_fraction=0.3, cloud_neighbours=1)
    table = chip_changes(pd.DataFrame(outcomes), plan(cells), plan(cells), EUROSAT_CLASSES, grown)
    cloudy = set(table.loc[table["status"] == "cloudy", "chip_id"])
    assert cloudy == {f"32633_{r}_{c}" for r in (1, 2, 3) for c in (1, 2, 3)}
    assert not table.loc[table["status"] == "cloudy", "changed"].any()
    assert table.loc[table["status"] == "both_scored", "changed"].all()  # crop -> forest
    # The measured cloud fractions stay as measured.
    assert row_at(table, 1, 1)["cloud_fraction_before"] == 0.0


def test_on_a_date_with_clouds_a_few_cloud_like_pixels_make_a_chip_cloudy():
    """A 5 x 5 scene whose before date has one chip 60 % cloud (4 % of the chips) and one chip 5 %
    cloud-like far from it: with cloudy_date_share 0.02 the date is cloudy, so the 5 % chip is a
    cloud too; in a clear scene (the 60 % chip gone) the same 5 % stays a chip to compare (roofs)."""
    cells = [(r, c) for r in range(5) for c in range(5)]

    def outcomes(big_cloud: float) -> pd.DataFrame:
        cloud = {(0, 0): big_cloud, (4, 4): 0.05}
        return pd.DataFrame([
            {**outcome("before", cell, "scored", "AnnualCrop", cloud.get(cell, 0.0)),
             **{k: v for k, v in outcome("after", cell, "scored", "AnnualCrop").items() if k != "chip_id"}}
            for cell in cells
        ])  # fmt: skip

    criteria = ChangeCriteria(max_cloud_fraction=0.2, cloudy_date_share=0.02, cloudy_date_cloud_fraction=0.02)
    cloudy = chip_changes(outcomes(0.6), plan(cells), plan(cells), EUROSAT_CLASSES, criteria)
    assert set(cloudy.loc[cloudy["status"] == "cloudy", "chip_id"]) == {"32633_0_0", "32633_4_4"}
    clear = chip_changes(outcomes(0.0), plan(cells), plan(cells), EUROSAT_CLASSES, criteria)
    assert (clear["status"] == "both_scored").all()
    # Off by default in code (share 1.0): only the 60 % chip is cloudy.
    default = chip_changes(outcomes(0.6), plan(cells), plan(cells), EUROSAT_CLASSES, ChangeCriteria())
    assert set(default.loc[default["status"] == "cloudy", "chip_id"]) == {"32633_0_0"}
    with pytest.raises(ValueError, match="cloudy_date_share"):
        ChangeCriteria(cloudy_date_share=1.5)
