"""`change` end to end through Kedro, with the model `train` wrote, on real imagery.

* Czech scene, 16 March (heavily clouded) -> 19 March: three days apart, so nothing changed on
  the ground. The "before" image is a crop shifted two chips west of the "after" one (the
  south-east quarter of the 2x2 split), so chips seen on one date only exist on both sides.
  The "after" date is scored by `score` first: `change` must reuse that run, not score again.
* OSCD Pisa, 16-bit per-band files in EPSG:4326 with the unreferenced change labels: detection
  metrics are computed against them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from conftest import RASTERS, SHARED_DATA, run_kedro
from rasterio.windows import Window

from aerial_kedro.change.table import CHIP_TABLE_COLUMNS
from aerial_kedro.geo.class_map import read_class_raster

pytestmark = pytest.mark.slow

AFTER = RASTERS / "czech-2x2" / "czech_s2_tci_20220319.3.tif"  # south-east quarter
CLOUDY = RASTERS / "czech_s2_tci_20220316_cloudy.tif"
PREDICTIONS = "data/07_model_output/scoring/predictions"
REPORTS = "data/08_reporting/change"
TABLE = "data/07_model_output/change/chip_table.parquet"
SHIFT_PX = 128  # two 64-px chips


@pytest.fixture(scope="module")
def before_crop(tmp_path_factory) -> Path:
    """The cloudy date over the after quarter's footprint, moved 1,280 m west."""
    with rasterio.open(AFTER) as after, rasterio.open(CLOUDY) as src:
        col, row = ~src.transform @ (after.bounds.left, after.bounds.top)
        window = Window(round(col) - SHIFT_PX, round(row), after.width, after.height)
        profile = {**src.profile, "width": after.width, "height": after.height,
                   "transform": src.window_transform(window), "compress": "deflate",
                   "photometric": "RGB"}  # fmt: skip
        profile.pop("jpeg_quality", None)
        path = tmp_path_factory.mktemp("before") / "czech_20220316_cloudy_crop.tif"
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(src.read(window=window))
    return path


def markers(project: Path) -> dict[str, float]:
    root = project / PREDICTIONS
    return {
        m.parent.relative_to(root).as_posix(): m.stat().st_mtime
        for m in root.glob("run_id=*/chunk=*/_COMPLETE.json")
    }


@pytest.fixture(scope="module")
def czech(trained_project, before_crop) -> dict:
    run_kedro(trained_project, "score", score_source=str(AFTER))
    scored_once = markers(trained_project)
    run_kedro(trained_project, "change",
              change={"before": str(before_crop), "after": str(AFTER), "reference": None})  # fmt: skip
    reports = trained_project / REPORTS
    return {
        "scored_once": scored_once,
        "markers": markers(trained_project),
        "table": pd.read_parquet(trained_project / TABLE),
        "transitions": json.loads((reports / "transitions.json").read_text()),
        "raster": read_class_raster(str(reports / "change.tif")),
        "changed": json.loads((reports / "changed_chips.geojson").read_text()),
        "metrics": json.loads((reports / "detection_metrics.json").read_text()),
        "reports": reports,
    }


def test_after_date_scored_by_score_is_reused_not_scored_again(czech):
    before_runs = {k for k in czech["markers"] if "cloudy_crop" in k}
    assert before_runs, "the before date was scored"
    reused = {k: v for k, v in czech["markers"].items() if k in czech["scored_once"]}
    assert reused == czech["scored_once"]  # same chunks, markers untouched
    assert set(czech["markers"]) == set(czech["scored_once"]) | before_runs


def test_every_chip_of_either_date_once_with_one_date_only_chips_reported(czech):
    table = czech["table"]
    assert set(CHIP_TABLE_COLUMNS) <= set(table.columns)
    assert table["chip_id"].is_unique
    counts = table["status"].value_counts()
    n_rows = table["row"].nunique()
    # Two chip columns on each side lie in one footprint only.
    assert counts["before_only"] == 2 * n_rows and counts["after_only"] == 2 * n_rows
    assert table.loc[table["status"] == "before_only", "class_before"].notna().all()
    assert table.loc[table["status"] == "before_only", "change_score"].isna().all()
    assert (table["col"][table["status"] == "before_only"] < table["col"].min() + 2).all()


def test_clouds_are_reported_as_cloudy_not_as_change(czech):
    table = czech["table"]
    cloudy = table[table["status"] == "cloudy"]
    assert len(cloudy) >= 3, "the 16 March clouds over this quarter"
    cloud = np.maximum(cloudy["cloud_fraction_before"], cloudy["cloud_fraction_after"])
    assert len(cloudy[cloud > 0.2]) >= 3  # change.max_cloud_fraction
    # 16 March is a date with clouds (>= 2 % of its chips over 0.2, change.cloudy_date_share), so
    # chips over 0.02 cloud-like are clouds too (change.cloudy_date_cloud_fraction) ...
    table_cloud = table["cloud_fraction_before"]
    assert (table_cloud > 0.2).sum() / table_cloud.notna().sum() >= 0.02
    either = np.maximum(table["cloud_fraction_before"].fillna(0), table["cloud_fraction_after"].fillna(0))
    over = table[either > 0.02]  # (a chip of one date only among them)
    # ... and the others lie next to one of those (change.cloud_neighbours 1): shadows and edges.
    for _, chip in cloudy[cloud <= 0.02].iterrows():
        assert ((over["row"] - chip["row"]).abs().le(1) & (over["col"] - chip["col"]).abs().le(1)).any()
    assert not cloudy["changed"].any() and cloudy["change_score"].isna().all()
    changed_ids = {f["id"] for f in czech["changed"]["features"]}
    assert changed_ids.isdisjoint(cloudy["chip_id"])
    assert changed_ids == set(table.loc[table["changed"], "chip_id"])
    assert czech["transitions"]["chips"]["cloudy"] == len(cloudy)


def test_change_geotiff_codes_match_the_table(czech):
    raster, table = czech["raster"], czech["table"]
    assert raster.crs == "EPSG:32633" and raster.transform.a == 640.0
    codes = {e["name"]: e["code"] for e in json.loads(raster.tags["change_codes"])}
    row0 = round(-raster.transform.f / 640.0)
    col0 = round(raster.transform.c / 640.0)
    values = raster.classes[table["row"].to_numpy() - row0, table["col"].to_numpy() - col0]
    assert (values[(table["status"] == "cloudy").to_numpy()] == codes["cloudy"]).all()
    assert (values[(table["status"] == "before_only").to_numpy()] == codes["before only"]).all()
    changed = table["changed"].to_numpy()
    expected = [codes[f"{b} -> {a}"] for b, a in
                zip(table["coarse_before"][changed], table["coarse_after"][changed], strict=True)]  # fmt: skip
    assert values[changed].tolist() == expected


def test_only_the_hazy_date_is_read_matched_to_the_clear_one(czech):
    before, after = czech["transitions"]["before"], czech["transitions"]["after"]
    assert before["radiometry_fit"]["applied"] and before["radiometry"] == "matched"
    assert before["radiometry_fit"]["contrast"] < before["radiometry_fit"]["reference_contrast"]
    assert not after["radiometry_fit"]["applied"] and after["radiometry"] == "none"
    assert after["radiometry_fit"]["pixels"] > 10_000


def test_transitions_add_up_and_no_reference_means_no_metrics(czech):
    summary, table = czech["transitions"], czech["table"]
    compared = int((table["status"] == "both_scored").sum())
    assert np.sum(summary["detected"]["chips"]) == compared == np.sum(summary["maps"]["chips"])
    assert sum(t["chips"] for t in summary["transitions"]) == int(table["changed"].sum())
    assert sum(summary["net_change_km2"].values()) == pytest.approx(0.0, abs=1e-6)
    assert czech["metrics"] == {"reference": None}
    for date in ("before", "after"):
        assert (czech["reports"] / date / "land_use_classes.tif").is_file()
    assert (czech["reports"] / "change_map.png").stat().st_size > 50_000


def test_oscd_pisa_against_its_change_labels(trained_project):
    oscd = SHARED_DATA / "oscd" / "pisa"
    run_kedro(trained_project, "change", change={
        "before": str(oscd / "imgs_1"), "after": str(oscd / "imgs_2"),
        "reference": str(oscd / "change_labels.tif")})  # fmt: skip
    metrics = json.loads((trained_project / REPORTS / "detection_metrics.json").read_text())
    assert metrics["georeferenced_from"].startswith(str(oscd / "imgs_2"))
    assert metrics["chips"] > 100 and 3 <= metrics["reference_changed"] <= 10
    assert 0.0 <= metrics["roc_auc"] <= 1.0
    assert metrics["tp"] + metrics["fn"] == metrics["reference_changed"]
    table = pd.read_parquet(trained_project / TABLE)
    assert table["crs"].unique().tolist() == ["EPSG:32632"]  # the chips are on the UTM grid


def test_overlapping_windows_compare_half_chip_cells(trained_project):
    """chip_stride_px 32: both dates averaged into 320 m cells, compared and assessed per cell."""
    oscd = SHARED_DATA / "oscd" / "pisa"
    run_kedro(trained_project, "change", scoring={"chip_stride_px": 32}, change={
        "score": "tv", "before": str(oscd / "imgs_1"), "after": str(oscd / "imgs_2"),
        "reference": str(oscd / "change_labels.tif")})  # fmt: skip
    table = pd.read_parquet(trained_project / TABLE)
    assert table["chip_id"].str.endswith("_c32").all() and table["chip_id"].is_unique
    assert ((table["maxx"] - table["minx"]) == 320).all()
    metrics = json.loads((trained_project / REPORTS / "detection_metrics.json").read_text())
    assert metrics["chips"] > 400  # ~4x the 640 m chips of the side-by-side run
    assert metrics["tp"] + metrics["fn"] == metrics["reference_changed"] >= 10
    raster = read_class_raster(str(trained_project / REPORTS / "change.tif"))
    assert raster.transform.a == 320.0
    compared = table[table["status"] == "both_scored"]
    assert compared["change_score"].between(0, 1).all()
