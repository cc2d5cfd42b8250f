"""Planning, chunking and run ids: driver-side, no Spark."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from conftest import RASTERS, pisa_bands_of_different_sizes

from aerial_kedro.chip_rows import PLAN_COLUMNS
from aerial_kedro.chips.planning import (
    PlanSettings,
    assign_chunks,
    group_into_jobs,
    list_source_files,
    make_run_id,
    pending_chunks,
    plan_from_chips,
    plan_from_tiles,
    plan_records,
    plan_source,
    resolve_source_kind,
    run_identity,
    source_slug,
    split_by_kind,
    task_sizes,
)
from aerial_kedro.geo.chip_planning import plan_chips_from_paths
from aerial_kedro.geo.grid import ChipGrid
from aerial_kedro.geo.radiometry import PRESETS

PART = RASTERS / "czech-2x2" / "czech_s2_tci_20220319.0.tif"
SETTINGS = PlanSettings(chunk_size=8)


@pytest.fixture(scope="module")
def part_plan() -> pd.DataFrame:
    chips, problems = plan_chips_from_paths([str(PART)], ChipGrid(64, 10.0))
    assert not problems
    return plan_from_chips(chips, chunk_size=8)


def test_chunks_are_contiguous_blocks_in_plan_order():
    assert assign_chunks(7, 3) == [0, 0, 0, 1, 1, 1, 2]
    assert assign_chunks(0, 3) == []
    with pytest.raises(ValueError, match="chunk_size"):
        assign_chunks(3, 0)


def test_pending_chunks_skip_completed_and_respect_max_chunks():
    assert pending_chunks(5, [], None) == [0, 1, 2, 3, 4]
    assert pending_chunks(5, [0, 3], None) == [1, 2, 4]
    assert pending_chunks(5, [0, 3], 2) == [1, 2]
    assert pending_chunks(3, [0, 1, 2], None) == []


def test_jobs_and_tasks():
    assert group_into_jobs([1, 2, 4, 5, 6], 2) == [[1, 2], [4, 5], [6]]
    assert group_into_jobs([], 3) == []


def test_tasks_shrink_so_the_slots_finish_together():
    # Two rounds on two slots: four equal quarters (what every job was before).
    assert task_sizes(1000, slots=2, tasks_per_slot=2) == [250, 250, 250, 250]
    # Factoring: every round gives each slot half of what is left, the last round the rest.
    assert task_sizes(1000, slots=2, tasks_per_slot=4) == [250, 250, 125, 125, 62, 62, 63, 63]
    assert task_sizes(100, slots=3, tasks_per_slot=3) == [16, 16, 16, 8, 8, 8, 9, 9, 10]
    for n_items in (1, 2, 3, 7, 31, 7881):
        for slots in (1, 2, 3):
            sizes = task_sizes(n_items, slots=slots, tasks_per_slot=4)
            assert sum(sizes) == n_items
            assert min(sizes) >= 1
            assert len(sizes) <= 4 * slots
    assert task_sizes(3, slots=2, tasks_per_slot=4) == [1, 2]
    assert task_sizes(0, slots=2, tasks_per_slot=2) == [0]


def test_chip_plan_is_sorted_numbered_and_chunked(part_plan):
    assert list(part_plan.columns) == list(PLAN_COLUMNS)
    assert list(part_plan["seq"]) == list(range(len(part_plan)))
    assert list(part_plan["chunk"]) == [seq // 8 for seq in range(len(part_plan))]
    keys = list(zip(part_plan["row"], part_plan["col"], strict=True))
    assert keys == sorted(keys)  # row-major: a chunk is a band of neighbouring chips
    assert part_plan["chip_id"].is_unique
    assert set(part_plan["kind"]) == {"chip"}
    assert (part_plan["source"] == str(PART)).all()


def test_plan_records_are_plain_python(part_plan, tmp_path):
    record = plan_records(part_plan.head(1))[0]
    assert len(record) == len(PLAN_COLUMNS)
    assert all(type(value) in (int, float, str, list) for value in record)
    tiles = plan_from_tiles([str(tmp_path / "a" / "x.jpg")], str(tmp_path), chunk_size=4)
    tile = dict(zip(PLAN_COLUMNS, plan_records(tiles)[0], strict=True))
    assert tile["chip_id"] == "a/x.jpg" and tile["kind"] == "tile"
    assert tile["row"] is None and tile["minx"] is None and tile["crs"] is None


def test_run_identity_follows_results_not_scheduling(part_plan):
    base = run_identity(part_plan, SETTINGS, "model-a")
    assert base == run_identity(part_plan.copy(), replace(SETTINGS, max_chips=10), "model-a")
    assert base != run_identity(part_plan, SETTINGS, "model-b")
    assert base != run_identity(part_plan, replace(SETTINGS, chunk_size=9), "model-a")
    assert base != run_identity(part_plan.iloc[1:], SETTINGS, "model-a")
    moved = part_plan.assign(sources=[["/elsewhere.tif"]] * len(part_plan))
    assert base != run_identity(moved, SETTINGS, "model-a")
    run_id = make_run_id(str(PART), base)
    assert run_id == f"czech_s2_tci_20220319.0-{base[:12]}"


@pytest.mark.parametrize(
    ("source", "slug"),
    [
        ("../shared/data/rasters/czech_s2_tci_20220319.tif", "czech_s2_tci_20220319"),
        ("data/czech-2x2/", "data_czech-2x2"),
        ("../shared/data/oscd/pisa/imgs_1", "pisa_imgs_1"),
        ("/tiles/2022 scene #1.TIFF", "src_2022_scene_1"),
        ("abfs://imagery@acct.dfs.core.windows.net/scenes/t33uwr.vrt", "t33uwr"),
    ],
)
def test_source_slug(source, slug):
    assert source_slug(source) == slug


def test_listing_and_source_kind(tmp_path):
    (tmp_path / "b").mkdir()
    for name in ("b/two.tif", "one.TIF", "one.tif.aux.xml", "notes.txt", "photo.jpg"):
        (tmp_path / name).write_bytes(b"x")
    root, files = list_source_files(str(tmp_path))
    assert root == str(tmp_path)
    assert [Path(f).relative_to(tmp_path).as_posix() for f in files] == [
        "b/two.tif", "notes.txt", "one.TIF", "one.tif.aux.xml", "photo.jpg"
    ]  # fmt: skip
    assert resolve_source_kind(files, "auto") == "rasters"
    used, problems = split_by_kind(files, "rasters")
    assert [Path(f).name for f in used] == ["two.tif", "one.TIF"]
    assert [Path(p["path"]).name for p in problems] == ["photo.jpg"]
    assert "tile" in problems[0]["reason"]
    assert resolve_source_kind([f for f in files if f.endswith("jpg")], "auto") == "tiles"
    tiles, _ = split_by_kind(files, "tiles")
    assert [Path(f).name for f in tiles] == ["two.tif", "one.TIF", "photo.jpg"]

    root, single = list_source_files(str(tmp_path / "one.TIF"))
    assert (root, single) == (str(tmp_path), [str(tmp_path / "one.TIF")])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        list_source_files(str(tmp_path / "missing"))


def test_local_paths_are_normalised(tmp_path, monkeypatch):
    (tmp_path / "scenes").mkdir()
    (tmp_path / "scenes" / "a.tif").write_bytes(b"x")
    monkeypatch.chdir(tmp_path / "scenes")
    root, files = list_source_files("../scenes/a.tif")
    assert (root, files) == (str(tmp_path / "scenes"), [str(tmp_path / "scenes" / "a.tif")])


# --------------------------------------------------------------------------- plan_source

OSCD = RASTERS.parent / "oscd"
PISA = OSCD / "pisa" / "imgs_1"


def test_plan_source_of_a_band_folder_in_lon_lat():
    """OSCD Pisa as users have it: uint16, one file per band, EPSG:4326 - nothing declared."""
    plan, problems, radiometry = plan_source(str(PISA))
    assert problems == [] and radiometry.name == "sentinel2_l1c"
    assert set(plan["crs"]) == {"EPSG:32632"} and plan["chip_id"].str.startswith("32632_").all()
    (source,) = set(plan["source"])
    assert source.startswith("stack:") and "_B04.tif" in source.split(",")[0]
    assert 10.36 < plan["lon"].min() and plan["lon"].max() < 10.45
    assert 43.67 < plan["lat"].min() and plan["lat"].max() < 43.76
    assert list(plan["seq"]) == list(range(len(plan))) == list(range(144))
    # The resolved conversion declared gives the same chips.
    same, _, _ = plan_source(str(PISA), PlanSettings(radiometry=radiometry))
    assert list(same["chip_id"]) == list(plan["chip_id"])


def test_plan_source_with_band_files_for_other_names(tmp_path):
    for band, name in (("B04", "rot.tif"), ("B03", "gruen.tif"), ("B02", "blau.tif")):
        (tmp_path / name).symlink_to(next(PISA.glob(f"*_{band}.tif")))
    settings = PlanSettings(band_files={"red": "rot.tif", "green": "gruen.tif", "blue": "blau.tif"})
    plan, problems, radiometry = plan_source(str(tmp_path), settings)
    by_name, _, _ = plan_source(str(PISA))
    assert problems == [] and radiometry.name == "sentinel2_l1c"
    assert list(plan["chip_id"]) == list(by_name["chip_id"])
    assert plan["source"].iloc[0] == (
        f'stack:["{tmp_path}/rot.tif", "{tmp_path}/gruen.tif", "{tmp_path}/blau.tif"]'
    )


def test_plan_source_of_8_bit_rgb_keeps_edges_and_needs_no_conversion():
    plan, problems, radiometry = plan_source(str(PART), PlanSettings(chunk_size=8))
    assert problems == [] and radiometry.name == "none"
    inside, _ = plan_chips_from_paths([str(PART)], ChipGrid(64, 10.0))
    assert len(plan) > len(inside)  # the part's north-edge row is 97 % inside
    assert {chip.chip_id for chip in inside} < set(plan["chip_id"])


def test_plan_source_rejects_lone_band_files_and_mixed_dtypes(tmp_path):
    (tmp_path / "scene_B08.tif").symlink_to(next(PISA.glob("*_B02.tif")))  # NIR alone
    (tmp_path / "rgb.tif").symlink_to(PART)
    plan, problems, radiometry = plan_source(str(tmp_path))
    assert radiometry.name == "none" and set(plan["source"]) == {str(tmp_path / "rgb.tif")}
    (problem,) = problems
    assert problem["path"].endswith("scene_B08.tif")
    assert problem["reason"].startswith("has 1 band(s); bands [1, 2, 3] wanted")
    for band in ("B02", "B03", "B04"):
        (tmp_path / f"pisa_{band}.tif").symlink_to(next(PISA.glob(f"*_{band}.tif")))
    plan, problems, radiometry = plan_source(str(tmp_path))
    reasons = {Path(p["path"]).name: p["reason"] for p in problems}
    assert "one conversion per run" in reasons["rgb.tif"]  # the stack (uint16) came first


def test_bands_of_different_sizes_stop_planning_in_one_line(tmp_path):
    pisa_bands_of_different_sizes(tmp_path)
    with pytest.raises(ValueError, match="band files differ in size: .*pisa_B04.tif") as error:
        plan_source(str(tmp_path))
    assert "pisa_B02.tif (600 x 500 px)" in str(error.value) and "\n" not in str(error.value)


def test_run_identity_follows_the_resolved_radiometry(part_plan):
    l1c, l2a = PRESETS["sentinel2_l1c"], PRESETS["sentinel2_l2a"]
    base = run_identity(part_plan, SETTINGS, "m", l1c)
    assert base == run_identity(part_plan, SETTINGS, "m", PRESETS["sentinel2_l1c"])
    assert base != run_identity(part_plan, SETTINGS, "m", l2a)
    assert base != run_identity(part_plan, SETTINGS, "m", PRESETS["sentinel2_l1c_offset"])
    assert base != run_identity(part_plan, SETTINGS, "m", None)
