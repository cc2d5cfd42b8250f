"""Planning, chunking and run ids: driver-side, no Spark."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from aerial_kedro.geo.chip_grid import ChipGrid, plan_chips_from_paths
from aerial_kedro.pipelines.scoring.planning import (
    PLAN_COLUMNS,
    assign_chunks,
    group_into_jobs,
    list_source_files,
    make_run_id,
    pending_chunks,
    plan_from_chips,
    plan_from_tiles,
    plan_records,
    resolve_source_kind,
    run_identity,
    source_slug,
    split_by_kind,
    task_count,
)

RASTERS = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "rasters"
PART = RASTERS / "czech-2x2" / "czech_s2_tci_20220319.0.tif"
SETTINGS = {
    "chip_px": 64,
    "resolution": 10.0,
    "chunk_size": 8,
    "max_empty_fraction": 0.5,
    "bands": [1, 2, 3],
}


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
    assert task_count(1000, slots=2, tasks_per_slot=2) == 4
    assert task_count(3, slots=2, tasks_per_slot=2) == 3
    assert task_count(0, slots=2, tasks_per_slot=2) == 1


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
    assert base == run_identity(part_plan.copy(), dict(SETTINGS, batch_size=1), "model-a")
    assert base != run_identity(part_plan, SETTINGS, "model-b")
    assert base != run_identity(part_plan, dict(SETTINGS, chunk_size=9), "model-a")
    assert base != run_identity(part_plan.iloc[1:], SETTINGS, "model-a")
    moved = part_plan.assign(sources=[["/elsewhere.tif"]] * len(part_plan))
    assert base != run_identity(moved, SETTINGS, "model-a")
    run_id = make_run_id(str(PART), base)
    assert run_id == f"czech_s2_tci_20220319.0-{base[:12]}"


@pytest.mark.parametrize(
    ("source", "slug"),
    [
        ("../shared/data/rasters/czech_s2_tci_20220319.tif", "czech_s2_tci_20220319"),
        ("data/czech-2x2/", "czech-2x2"),
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
