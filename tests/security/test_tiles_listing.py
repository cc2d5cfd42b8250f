"""Threat: a tile folder whose symbolic links loop or dangle (issue 13, item 9).

Spark's file listing follows symbolic links: a link to an ancestor folder made 10 tiles into
410 ``tile_index`` rows (each file featurized ~40 times, and split across train and test), and
a link whose target is gone vanished without a word. What these tests prove: the index holds
each real file once, and every repeat and every dangling link reaches ``rejected_tiles`` with a
reason, through the same flow as an undecodable tile (ingestion -> featurization).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import copy_sample_tiles

from aerial_kedro.pipelines.featurization.nodes import featurize_tiles
from aerial_kedro.pipelines.ingestion.nodes import build_tile_index

TILE_GLOB = "*.{jpg,jpeg,png,tif,tiff,JPG,JPEG,PNG,TIF,TIFF}"  # the catalog's pathGlobFilter
PARAMS = {"test_fraction": 0.2, "sample_frac": 1.0}


@pytest.fixture(scope="module")
def looping_folder(tmp_path_factory, sample_tiles) -> Path:
    """10 real tiles in Forest/ and River/, a link from Forest/ back to the root (a loop), a
    link to one tile under another name, and a dangling link."""
    root = tmp_path_factory.mktemp("looping_tiles")
    copy_sample_tiles(sample_tiles, root, {"Forest": 5, "River": 5})
    os.symlink(root, root / "Forest" / "back_to_root")
    os.symlink(root / "River" / "River_1.jpg", root / "River" / "alias_of_River_1.jpg")
    os.symlink(root / "River" / "gone.jpg", root / "River" / "dangling.jpg")
    return root


@pytest.fixture(scope="module")
def raw_tiles(spark, looping_folder):
    return (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", TILE_GLOB)
        .load(str(looping_folder))
    )


@pytest.fixture(scope="module")
def index(raw_tiles):
    return build_tile_index(raw_tiles, PARAMS, seed=3).toPandas()


def test_spark_listing_itself_repeats_files_through_the_loop(raw_tiles):
    # The hazard is real: what Spark hands ingestion has many more paths than there are files.
    assert len(raw_tiles.inputFiles()) > 20


def test_the_index_holds_each_real_file_once(index, looping_folder):
    kept = index[index["reason"].isna()]
    real_files = {
        str(path.resolve()) for path in looping_folder.glob("*/*.jpg") if not path.is_symlink()
    }
    assert len(kept) == len(real_files) == 10
    assert {os.path.realpath(uri.removeprefix("file:")) for uri in kept["uri"]} == real_files
    assert set(kept["split"]) == {"train", "test"}
    assert kept["tile_id"].is_unique


def test_repeats_and_dangling_links_are_excluded_with_a_reason(index, looping_folder):
    excluded = index[index["reason"].notna()].set_index("uri")
    assert (excluded["split"] == "excluded").all()
    dangling = f"file:{looping_folder}/River/dangling.jpg"
    assert excluded.loc[dangling, "reason"].startswith("dangling symbolic link")
    alias = f"file:{looping_folder}/River/alias_of_River_1.jpg"
    assert excluded.loc[alias, "reason"] == (
        f"repeat of file:{looping_folder}/River/River_1.jpg "
        "(the same file reached through a symbolic link)"
    )
    through_loop = excluded.drop(index=[dangling, alias])
    assert len(through_loop) > 10
    assert all("/back_to_root/" in uri for uri in through_loop.index)
    assert through_loop["reason"].str.startswith("repeat of file:").all()


def test_rejected_tiles_report_every_repeat_and_dangling_link(
    raw_tiles, efficientnet_lite0, looping_folder
):
    onnx_bytes, spec = efficientnet_lite0
    index = build_tile_index(raw_tiles, PARAMS, seed=3)
    params = {"batch_size": 8, "threads_per_task": 1, "partitions_per_core": 1}

    features, rejected = featurize_tiles(raw_tiles, index, onnx_bytes, spec.to_dict(), params)

    assert features.count() == 10
    reasons = {row["uri"]: row["reason"] for row in rejected.collect()}
    assert len(reasons) == len(raw_tiles.inputFiles()) - 10 + 1  # repeats + the dangling link
    assert reasons[f"file:{looping_folder}/River/dangling.jpg"].startswith("dangling")
    assert sum(reason.startswith("repeat of") for reason in reasons.values()) == len(reasons) - 1
