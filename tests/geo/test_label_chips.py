"""Reference labels -> chips: the real Czech reference squares, and small hand-made files."""

from __future__ import annotations

import time

import geopandas as gpd
import numpy as np
import pytest
from geo.label_fixtures import COL, CZECH_LABELS, GRID, ROW, SIZE, UTM, centre, chip_box, write
from shapely.geometry import MultiPoint, Point, box

from aerial_kedro.geo.grid import chip_bounds, chip_id
from aerial_kedro.geo.label_chips import (
    CHIP_COLUMNS,
    REJECTED_COLUMNS,
    chips_for_labels,
    reject_outside,
)
from aerial_kedro.geo.label_files import read_reference_labels

# --------------------------------------------------------------------------- the real labels


@pytest.mark.skipif(not CZECH_LABELS.exists(), reason=f"{CZECH_LABELS} missing")
def test_czech_reference_squares_map_one_to_one_onto_the_chip_grid():
    labels = read_reference_labels(str(CZECH_LABELS))
    assert list(labels.columns) == ["label_id", "label", "geometry"]
    assert labels.crs.to_epsg() == 4326  # RFC 7946 GeoJSON: lon/lat
    assert labels["label_id"].tolist() == list(range(218))  # no id property: positions

    chips, rejected = chips_for_labels(labels, UTM, GRID)

    assert rejected.empty
    assert list(chips.columns) == list(CHIP_COLUMNS)
    assert len(chips) == 218 and chips["chip_id"].is_unique
    # Every square is exactly one chip of the 640 m grid anchored at (0, 0): proves the maths.
    assert chips["label_ids"].map(len).eq(1).all()
    assert sorted(i for ids in chips["label_ids"] for i in ids) == list(range(218))
    assert chips["cover"].between(0.9999, 1.0).all()
    assert chips["label"].value_counts().to_dict() == {"cropland": 194, "forest": 16, "built": 8}
    assert (chips["crs"] == UTM).all()
    first = chips.iloc[0]
    assert first["chip_id"] == chip_id(UTM, first["row"], first["col"])
    assert (first["minx"], first["miny"], first["maxx"], first["maxy"]) == chip_bounds(
        first["row"], first["col"], SIZE
    )
    # The squares lie over the Czech scene (x 543100-560930, y 5567910-5579500), west half;
    # the top row (11 squares, row -8718) sticks out of the scene by 20 m.
    assert chips["minx"].min() >= 543100 and chips["maxx"].max() <= (543100 + 560930) / 2 + SIZE
    assert chips["miny"].min() >= 5567910 and chips["maxy"].max() == 5579520
    assert (chips["row"] == -8718).sum() == 11

    # At a cover of 100 % the squares (drawn in lon/lat, 7 decimals) still label their chips.
    strict, strict_rejected = chips_for_labels(labels, UTM, GRID, min_cover=1.0)
    assert len(strict) == 218 and strict_rejected.empty


# --------------------------------------------------------------------------- hand-made cases


def test_points_in_geopackage_label_the_chip_containing_them(tmp_path):
    points = gpd.GeoDataFrame(
        {"landuse": ["forest", "forest", "built"], "id": [11, 12, 13]},
        geometry=[
            centre(ROW, COL),
            Point(chip_bounds(ROW, COL, SIZE)[0] + 1, chip_bounds(ROW, COL, SIZE)[3] - 1),
            centre(ROW, COL + 1),
        ],
        crs=UTM,
    )
    path = write(points, tmp_path / "points.gpkg")
    labels = read_reference_labels(str(path), class_field="landuse")
    assert labels["label_id"].tolist() == [11, 12, 13]  # the id property, not positions

    chips, rejected = chips_for_labels(labels, UTM, GRID)

    assert rejected.empty
    assert chips["chip_id"].tolist() == [chip_id(UTM, ROW, COL), chip_id(UTM, ROW, COL + 1)]
    assert chips["label"].tolist() == ["forest", "built"]
    assert chips["label_ids"].tolist() == [[11, 12], [13]]  # same class on one chip: merged
    assert chips["cover"].isna().all()  # points have no cover


def test_contradicting_labels_drop_the_chip_and_are_rejected(tmp_path):
    frame = gpd.GeoDataFrame(
        {"class": ["forest", "cropland", "forest"]},
        geometry=[chip_box(ROW, COL), chip_box(ROW, COL, shrink=20), chip_box(ROW + 1, COL)],
        crs=UTM,
    )
    labels = read_reference_labels(str(write(frame, tmp_path / "mixed.shp")))
    assert labels.crs.to_epsg() == 32633  # from the .prj

    chips, rejected = chips_for_labels(labels, UTM, GRID)

    assert chips["chip_id"].tolist() == [chip_id(UTM, ROW + 1, COL)]
    assert list(rejected.columns) == list(REJECTED_COLUMNS)
    contested = chip_id(UTM, ROW, COL)
    assert rejected.to_dict("records") == [
        {
            "label_id": 0,
            "label": "forest",
            "reason": f"contradicts label 1 (class cropland) on chip {contested}",
            "chip_id": contested,
        },
        {
            "label_id": 1,
            "label": "cropland",
            "reason": f"contradicts label 0 (class forest) on chip {contested}",
            "chip_id": contested,
        },
    ]


def test_min_cover_decides_which_chips_a_polygon_labels(tmp_path):
    minx, miny, maxx, maxy = chip_bounds(ROW, COL, SIZE)
    # 60 % of chip COL and 40 % of chip COL+1; a sliver covering 10 % of chip COL+3.
    straddling = box(minx + 0.4 * SIZE, miny, maxx + 0.4 * SIZE, maxy)
    sliver = box(minx + 3 * SIZE, miny, minx + 3.1 * SIZE, maxy)
    frame = gpd.GeoDataFrame(
        {"class": ["cropland", "built"]}, geometry=[straddling, sliver], crs=UTM
    )
    labels = read_reference_labels(str(write(frame, tmp_path / "cover.gpkg")))

    chips, rejected = chips_for_labels(labels, UTM, GRID, min_cover=0.5)
    assert chips["chip_id"].tolist() == [chip_id(UTM, ROW, COL)]
    assert chips["cover"].iloc[0] == pytest.approx(0.6)
    assert rejected[["label_id", "reason"]].to_dict("records") == [
        {"label_id": 1, "reason": "covers no chip by at least 50 %"}
    ]

    loose, loose_rejected = chips_for_labels(labels, UTM, GRID, min_cover=0.05)
    assert loose["chip_id"].tolist() == [chip_id(UTM, ROW, c) for c in (COL, COL + 1, COL + 3)]
    assert loose["cover"].round(3).tolist() == [0.6, 0.4, 0.1]
    assert loose_rejected.empty


def test_multipoint_labels_each_chip_under_it(tmp_path):
    frame = gpd.GeoDataFrame(
        {"class": ["forest"]},
        geometry=[MultiPoint([centre(ROW, COL), centre(ROW + 2, COL)])],
        crs=UTM,
    )
    chips, _ = chips_for_labels(
        read_reference_labels(str(write(frame, tmp_path / "m.gpkg"))), UTM, GRID
    )
    assert chips["chip_id"].tolist() == [chip_id(UTM, ROW, COL), chip_id(UTM, ROW + 2, COL)]


def test_reject_outside_keeps_planned_chips_only(tmp_path):
    frame = gpd.GeoDataFrame(
        {"class": ["forest", "cropland", "cropland"]},
        geometry=[chip_box(ROW, COL), centre(ROW, COL + 5), chip_box(ROW, COL + 5, shrink=50)],
        crs=UTM,
    )
    chips, _ = chips_for_labels(
        read_reference_labels(str(write(frame, tmp_path / "o.gpkg"))), UTM, GRID
    )

    kept, rejected = reject_outside(chips, [chip_id(UTM, ROW, COL), "32633_0_0"])

    assert kept["chip_id"].tolist() == [chip_id(UTM, ROW, COL)]
    outside = chip_id(UTM, ROW, COL + 5)
    assert rejected.to_dict("records") == [
        {
            "label_id": i,
            "label": "cropland",
            "reason": f"outside every raster (chip {outside})",
            "chip_id": outside,
        }
        for i in (1, 2)
    ]


def test_ten_thousand_polygons_are_vectorised():
    rng = np.random.default_rng(0)
    rows = rng.integers(-8800, -8700, 10_000)
    cols = rng.integers(800, 900, 10_000)
    frame = gpd.GeoDataFrame(
        {"label_id": np.arange(10_000), "label": "cropland"},
        geometry=[chip_box(r, c, shrink=10) for r, c in zip(rows, cols, strict=True)],
        crs=UTM,
    )
    started = time.perf_counter()
    chips, rejected = chips_for_labels(frame, UTM, GRID)
    elapsed = time.perf_counter() - started
    print(f"10,000 polygons -> {len(chips)} chips in {elapsed:.2f} s")
    assert rejected.empty
    assert len(chips) == len(set(zip(rows.tolist(), cols.tolist(), strict=True)))
    assert chips["label_ids"].map(len).sum() == 10_000


def test_labels_with_text_ids_such_as_the_samples_own_geojson_put_chips_on_the_grid(tmp_path):
    """`sample`'s GeoJSONs (the design, the training candidates) carry the chip id as each
    feature's id: labelled and handed to `train`, they must label their chips (text ids were
    once an AttributeError in the middle of `train`)."""
    import json

    from aerial_kedro.geo.geojson import chips_to_geojson

    records = [
        {"chip_id": chip_id(UTM, ROW, COL + k), "crs": UTM, "minx": b[0], "miny": b[1],
         "maxx": b[2], "maxy": b[3]}
        for k, b in enumerate(chip_bounds(ROW, COL + k, SIZE) for k in range(3))
    ]  # fmt: skip
    collection = chips_to_geojson(records, with_probabilities=False)
    for feature, label in zip(collection["features"], ["forest", "built", "forest"], strict=True):
        feature["properties"] = {"class": label}
    path = tmp_path / "training_candidates.geojson"
    path.write_text(json.dumps(collection))
    labels = read_reference_labels(str(path))
    assert labels["label_id"].tolist() == [r["chip_id"] for r in records]

    chips, rejected = chips_for_labels(labels, UTM, GRID)

    assert rejected.empty
    assert chips["chip_id"].tolist() == [r["chip_id"] for r in records]
    assert chips["label_ids"].tolist() == [[r["chip_id"]] for r in records]
    assert chips["label"].tolist() == ["forest", "built", "forest"]


def test_contradicting_labels_with_text_ids_are_rejected_naming_them(tmp_path):
    frame = gpd.GeoDataFrame(
        {"class": ["forest", "cropland"], "id": ["a-1", "b-2"]},
        geometry=[chip_box(ROW, COL), chip_box(ROW, COL, shrink=20)],
        crs=UTM,
    )
    labels = read_reference_labels(str(write(frame, tmp_path / "mixed.gpkg")))
    chips, rejected = chips_for_labels(labels, UTM, GRID)
    assert chips.empty
    assert rejected["label_id"].tolist() == ["a-1", "b-2"]
    assert "contradicts label b-2 (class cropland)" in rejected["reason"].iloc[0]
