"""Threat: a tile file is hostile or broken (issue 13, item 3).

Tiles come from users' folders and blob containers: untrusted bytes. A 68-byte PNG may declare
20000 x 20000 pixels (a decompression bomb); PIL then raises ``DecompressionBombError``, which
used to escape the decoder and end the whole ``train`` run. What these tests prove: every decode
failure of one tile - bombs, oversized headers, truncated data - becomes that tile's rejection
with a reason, in featurization (``rejected_tiles``) and in scoring (status ``unreadable``), and
the other tiles are featurized as usual.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from conftest import copy_sample_tiles
from PIL import Image

from aerial_kedro.chips.inference import featurize_items_spark, plan_frame
from aerial_kedro.chips.planning import plan_from_tiles, task_sizes
from aerial_kedro.chips.records import ChipReading
from aerial_kedro.featurizers.decode import MAX_TILE_PIXELS, TileDecodeError, decode_tile
from aerial_kedro.pipelines.featurization.nodes import featurize_tiles
from aerial_kedro.pipelines.ingestion.nodes import build_tile_index

TILE_GLOB = "*.{jpg,jpeg,png,tif,tiff,JPG,JPEG,PNG,TIF,TIFF}"  # the catalog's pathGlobFilter
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int) -> bytes:
    """A well-formed PNG header declaring ``width x height`` 8-bit RGB, with one tiny IDAT:
    a few dozen bytes that ask the decoder for width x height x 3 bytes."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 4))
        + png_chunk(b"IEND", b"")
    )


def solid_png(path: Path, size: int, colour: tuple[int, int, int]) -> Path:
    """A real ``size x size`` single-colour PNG (compresses ~1000:1: 4000 px = ~46 KB)."""
    Image.new("RGB", (size, size), colour).save(path, "PNG", optimize=False)
    return path


def test_a_decompression_bomb_is_a_decode_error_with_a_reason():
    bomb = png_declaring(20_000, 20_000)
    assert len(bomb) < 100
    with pytest.raises(TileDecodeError, match="too large"):
        decode_tile(bomb)


def test_a_real_image_over_the_pixel_cap_is_refused_from_its_header(tmp_path):
    side = 5000  # 25 M pixels: under PIL's own bomb limit (89 M), far beyond any tile here
    content = solid_png(tmp_path / "big.png", side, (10, 20, 30)).read_bytes()
    assert len(content) < 200_000
    with pytest.raises(TileDecodeError, match=f"image too large: {side}x{side}"):
        decode_tile(content)
    assert MAX_TILE_PIXELS < side * side


@pytest.fixture(scope="module")
def hostile_folder(tmp_path_factory, sample_tiles) -> Path:
    """Real EuroSAT tiles in two class folders, plus a bomb and a truncated PNG among them."""
    root = tmp_path_factory.mktemp("hostile_tiles")
    copy_sample_tiles(sample_tiles, root, {"Forest": 3, "River": 3})
    (root / "Forest" / "bomb.png").write_bytes(png_declaring(20_000, 20_000))
    good = (sample_tiles / "River" / "River_1.jpg").read_bytes()
    (root / "River" / "truncated.jpg").write_bytes(good[: len(good) // 3])
    return root


def test_train_featurization_rejects_the_bomb_and_featurizes_the_rest(
    spark, hostile_folder, efficientnet_lite0
):
    onnx_bytes, spec = efficientnet_lite0
    raw_tiles = (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", TILE_GLOB)
        .load(str(hostile_folder))
    )
    index = build_tile_index(raw_tiles, {"test_fraction": 0.2, "sample_frac": 1.0}, seed=1)
    params = {"batch_size": 4, "threads_per_task": 1, "partitions_per_core": 1}

    features, rejected = featurize_tiles(raw_tiles, index, onnx_bytes, spec.to_dict(), params)

    reasons = {row["tile_id"]: row["reason"] for row in rejected.collect()}
    assert set(reasons) == {"Forest/bomb.png", "River/truncated.jpg"}
    assert reasons["Forest/bomb.png"].startswith("image too large")
    assert reasons["River/truncated.jpg"].startswith("corrupt image")
    assert features.count() == 6


def test_scoring_marks_the_bomb_unreadable_and_scores_the_rest(
    spark, hostile_folder, efficientnet_lite0
):
    onnx_bytes, spec = efficientnet_lite0
    paths = sorted(str(path) for path in hostile_folder.glob("*/*"))
    plan = plan_from_tiles(paths, str(hostile_folder), chunk_size=4)
    items = plan_frame(spark, plan, task_sizes(len(plan), slots=2, tasks_per_slot=1))
    broadcast = spark.sparkContext.broadcast(onnx_bytes)

    out = (
        featurize_items_spark(
            items, broadcast, spec, ChipReading(batch_size=4, threads=1, max_empty_fraction=0.5)
        )
        .toPandas()
        .set_index("chip_id")
    )

    assert out.loc["Forest/bomb.png", "status"] == "unreadable"
    assert out.loc["Forest/bomb.png", "reason"].startswith("image too large")
    assert out.loc["River/truncated.jpg", "status"] == "unreadable"
    assert (out.drop(index=["Forest/bomb.png", "River/truncated.jpg"])["status"] == "scored").all()
