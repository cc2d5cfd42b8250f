"""featurization.backend=synapseml (SynapseML's ONNXModel) gives the default backend's features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from blob.azurite import require
from conftest import JAR_CACHE

from aerial_kedro.featurizers.preprocess import to_network_input
from aerial_kedro.featurizers.synapseml import nested_tensor_array
from aerial_kedro.pipelines.featurization.nodes import featurize_tiles

pytestmark = pytest.mark.slow  # kedro subprocesses, Spark jobs or servers

SYNAPSEML_JARS = JAR_CACHE / "synapseml"


@pytest.fixture
def synapseml_jars() -> None:
    """Skip without SynapseML's jars (fail in CI, where set-up fetches them)."""
    require(SYNAPSEML_JARS, "bash scripts/fetch_synapseml_jars.sh")


FEATURIZATION = {"backend": "ort", "batch_size": 32, "threads_per_task": None, "partitions_per_core": 1}
# Tiles per class compared (both backends featurize them): every class, several batches.
TILES_PER_CLASS = 6


def tile_rows(sample_tiles: Path) -> list[tuple[str, str, str, str, bytes]]:
    """(tile_id, uri, label, split, content) for the first sample tiles of every class plus three
    undecodable ones."""
    rows = [
        (f"{path.parent.name}/{path.name}", path.as_uri(), path.parent.name, "train", path.read_bytes())
        for folder in sorted(p for p in sample_tiles.iterdir() if p.is_dir())
        for path in sorted(folder.glob("*.jpg"))[:TILES_PER_CLASS]
    ]
    forest = rows[0][4]
    bad = {"Forest/truncated.jpg": forest[: len(forest) // 3], "River/empty.jpg": b"", "SeaLake/notes.jpg": b"not an image"}
    rows += [(tile_id, f"file:///bad/{tile_id}", tile_id.split("/")[0], "train", content) for tile_id, content in bad.items()]
    return rows


@pytest.fixture(scope="module")
def tiles(spark, sample_tiles):
    schema = "tile_id string, uri string, label string, split string, content binary"
    return spark.createDataFrame(tile_rows(sample_tiles), schema)


def featurize(tiles, onnx_bytes, spec, backend: str) -> dict[str, tuple[np.ndarray | None, str | None]]:
    """Through the featurize_tiles node: {tile_id: (features or None, rejection reason or None)}."""
    index = tiles.select("tile_id", "uri", "label", "split")
    raw = tiles.select(tiles.uri.alias("path"), "content")
    features, rejected = featurize_tiles(raw, index, onnx_bytes, spec.to_dict(), {**FEATURIZATION, "backend": backend})
    result = {row["tile_id"]: (np.asarray(row["features"], dtype=np.float32), None) for row in features.collect()}
    result.update({row["tile_id"]: (None, row["reason"]) for row in rejected.collect()})
    return result


def test_nested_tensor_array_keeps_every_value_in_place():
    tensor = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    assert np.array_equal(np.asarray(nested_tensor_array(tensor).to_pylist(), dtype=np.float32), tensor)


def test_unknown_backend_is_named(tiles, efficientnet_lite0):
    onnx_bytes, spec = efficientnet_lite0
    with pytest.raises(ValueError, match="featurization.backend: 'tensorrt' is not allowed; allowed values: ort, synapseml"):
        featurize(tiles, onnx_bytes, spec, "tensorrt")


def test_synapseml_features_equal_onnxruntime_features(synapseml_jars, tiles, efficientnet_lite0):
    onnx_bytes, spec = efficientnet_lite0
    expected = featurize(tiles, onnx_bytes, spec, "ort")
    actual = featurize(tiles, onnx_bytes, spec, "synapseml")
    assert set(actual) == set(expected) and len(actual) == 10 * TILES_PER_CLASS + 3
    reasons = {tile_id: reason for tile_id, (_, reason) in actual.items() if reason}
    assert reasons == {tile_id: reason for tile_id, (_, reason) in expected.items() if reason}
    assert set(reasons) == {"Forest/truncated.jpg", "River/empty.jpg", "SeaLake/notes.jpg"}
    assert reasons["River/empty.jpg"] == "empty file" and reasons["SeaLake/notes.jpg"].startswith("not an image")
    good = sorted(tile_id for tile_id, (features, _) in expected.items() if features is not None)
    assert len(good) == 10 * TILES_PER_CLASS and all(actual[tile_id][0].shape == (spec.feature_dim,) for tile_id in good)
    difference = max(float(np.abs(actual[tile_id][0] - expected[tile_id][0]).max()) for tile_id in good)
    assert difference < 1e-4, difference


def test_network_input_is_the_default_preprocessing(efficientnet_lite0, sample_tiles):
    """The synapseml backend's tensor for a tile is exactly to_network_input's (no second implementation)."""
    import pyarrow as pa

    from aerial_kedro.featurizers.decode import decode_tile
    from aerial_kedro.featurizers.synapseml import network_input_batch

    _, spec = efficientnet_lite0
    paths = sorted(sample_tiles.glob("Highway/*.jpg"))[:3]
    contents = [path.read_bytes() for path in paths]
    batch = pa.RecordBatch.from_arrays([pa.array(["a", "b", "c"]), pa.array(contents, pa.binary())], names=["tile_id", "content"])
    out = network_input_batch(batch, spec)
    assert out.schema.names == ["tile_id", "network_input", "error"]
    expected = to_network_input([decode_tile(content) for content in contents], spec)
    assert np.array_equal(np.asarray(out.column("network_input").to_pylist(), dtype=np.float32), expected)
