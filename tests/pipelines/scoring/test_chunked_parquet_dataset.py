"""Chunk partitions + completion markers: rewriting never duplicates, readers see finished chunks only."""

from __future__ import annotations

import json

import pytest
from kedro.io.core import DatasetError

from aerial_kedro.datasets import ChunkedParquetDataset, ChunkMarkersDataset, PredictionChunks

SCHEMA = "chip_id string, value int, run_id string, chunk int"


def chunks_frame(spark, run_id: str, chunks: dict[int, list[str]], value: int):
    rows = [(chip, value, run_id, chunk) for chunk, chips in chunks.items() for chip in chips]
    return spark.createDataFrame(rows, SCHEMA)


def rows_of(frame) -> list[tuple]:
    return sorted(
        tuple(row) for row in frame.select("run_id", "chunk", "chip_id", "value").collect()
    )


def test_rewritten_chunks_replace_their_rows_exactly_once(spark, tmp_path):
    path = str(tmp_path / "predictions")
    predictions = ChunkedParquetDataset(filepath=path)
    markers = ChunkMarkersDataset(filepath=path)
    assert markers.load() == {}
    with pytest.raises(DatasetError, match="No completed chunks"):
        predictions.load()

    first = {0: ["a", "b"], 1: ["c", "d"]}
    predictions.save(PredictionChunks(chunks_frame(spark, "run-x", first, 1), "run-x", (0, 1)))
    # Chunk 1 again (a resumed run redoing it) with new values, and chunk 2 for the first time.
    again = {1: ["c", "d"], 2: ["e"]}
    predictions.save(PredictionChunks(chunks_frame(spark, "run-x", again, 2), "run-x", (1, 2)))
    other = {0: ["a"]}
    predictions.save(PredictionChunks(chunks_frame(spark, "run-y", other, 3), "run-y", (0,)))

    assert markers.load() == {"run-x": [0, 1, 2], "run-y": [0]}
    assert rows_of(predictions.load()) == [
        ("run-x", 0, "a", 1),
        ("run-x", 0, "b", 1),
        ("run-x", 1, "c", 2),
        ("run-x", 1, "d", 2),
        ("run-x", 2, "e", 2),
        ("run-y", 0, "a", 3),
    ]
    marker = json.loads((tmp_path / "predictions/run_id=run-x/chunk=2/_COMPLETE.json").read_text())
    assert marker["run_id"] == "run-x" and marker["chunk"] == 2


def test_unmarked_chunks_are_invisible(spark, tmp_path):
    """Files of an interrupted job (no marker yet) or a chunk being rewritten are never read."""
    path = str(tmp_path / "predictions")
    predictions = ChunkedParquetDataset(filepath=path)
    done = {0: ["a"], 1: ["b"]}
    predictions.save(PredictionChunks(chunks_frame(spark, "run-x", done, 1), "run-x", (0, 1)))

    # A writer that died after its files landed but before it marked them: chunk 3 appears,
    # and chunk 1 is replaced (dynamic overwrite drops its old marker with its old files).
    (
        chunks_frame(spark, "run-x", {1: ["b"], 3: ["z"]}, 9)
        .write.mode("overwrite")
        .option("partitionOverwriteMode", "dynamic")
        .partitionBy("run_id", "chunk")
        .parquet(path)
    )
    assert ChunkMarkersDataset(filepath=path).load() == {"run-x": [0]}
    assert rows_of(predictions.load()) == [("run-x", 0, "a", 1)]


def test_save_checks_its_input(spark, tmp_path):
    predictions = ChunkedParquetDataset(filepath=str(tmp_path / "p"))
    frame = spark.createDataFrame([("a", 1)], "chip_id string, value int")
    with pytest.raises(DatasetError, match="lacks column"):
        predictions.save(PredictionChunks(frame, "run-x", (0,)))
    with pytest.raises(DatasetError, match="Expected PredictionChunks"):
        predictions.save(frame)
    with pytest.raises(DatasetError, match="read-only"):
        ChunkMarkersDataset(filepath=str(tmp_path / "p")).save({})


def test_chunks_another_run_completed_meanwhile_are_not_written_again(spark, tmp_path):
    path = str(tmp_path / "predictions")
    predictions = ChunkedParquetDataset(filepath=path)
    before = "2000-01-01T00:00:00+00:00"  # this run started long before the other finished
    predictions.save(PredictionChunks(chunks_frame(spark, "run-x", {0: ["a"]}, 1), "run-x", (0,)))
    late = PredictionChunks(chunks_frame(spark, "run-x", {0: ["a"], 1: ["b"]}, 2), "run-x", (0, 1),
                            started_at=before)  # fmt: skip
    predictions.save(late)
    assert rows_of(predictions.load()) == [("run-x", 0, "a", 1), ("run-x", 1, "b", 2)]
    assert (tmp_path / "predictions" / "_run_locks" / "run-x.lock").exists()


def test_binary_columns_are_written_without_a_dictionary(spark, tmp_path):
    """Per-chip bytes (change descriptors) are unique, so the writer is told not to try a dictionary
    on binary columns (it would hash every value, then drop it). Repeated bytes show the setting
    holds: without it they would be dictionary-encoded, as the repeated strings still are."""
    import pyarrow.parquet as pq

    rows = [(f"chip-{i}", bytes([7]) * 64, "same label", "run-x", 0) for i in range(50)]
    frame = spark.createDataFrame(rows, "chip_id string, cells binary, label string, run_id string, chunk int")
    ChunkedParquetDataset(filepath=str(tmp_path / "p")).save(PredictionChunks(frame, "run-x", (0,)))

    encodings = {}
    for part in (tmp_path / "p" / "run_id=run-x" / "chunk=0").glob("*.parquet"):
        group = pq.ParquetFile(part).metadata.row_group(0)
        for i in range(group.num_columns):
            encodings.setdefault(group.column(i).path_in_schema, set()).update(group.column(i).encodings)
    dictionary = {"PLAIN_DICTIONARY", "RLE_DICTIONARY"}
    assert encodings["cells"] and not encodings["cells"] & dictionary
    assert encodings["label"] & dictionary
