import numpy as np
import pandas as pd

from aerial_kedro.featurizers.decode import decode_tile
from aerial_kedro.featurizers.runner import OnnxFeaturizer
from aerial_kedro.spark_inference import featurize_tiles_spark


def test_spark_features_equal_a_bare_onnxruntime_loop(spark, sample_tiles, efficientnet_lite0):
    onnx_bytes, spec = efficientnet_lite0
    paths = sorted(sample_tiles.glob("*/*.jpg"))[::6]
    frame = pd.DataFrame({"tile_id": [p.name for p in paths], "content": [p.read_bytes() for p in paths]})
    frame.loc[len(frame)] = ["broken.jpg", paths[0].read_bytes()[:300]]
    frame.loc[len(frame)] = ["empty.jpg", b""]
    tiles = spark.createDataFrame(frame, "tile_id string, content binary")

    result = featurize_tiles_spark(tiles, onnx_bytes, spec, batch_size=16, threads=1, num_partitions=3).toPandas()

    result = result.set_index("tile_id")
    assert result.loc["broken.jpg", "error"].startswith("corrupt image")
    assert result.loc["empty.jpg", "error"] == "empty file"
    assert result.loc["broken.jpg", "features"] is None
    good = result[result["error"].isna()]
    assert len(good) == len(paths)
    reference = OnnxFeaturizer(onnx_bytes, spec).features([decode_tile(p.read_bytes()) for p in paths])
    ours = np.stack([np.asarray(good.loc[p.name, "features"]) for p in paths])
    assert ours.shape == (len(paths), 1280)
    np.testing.assert_allclose(ours, reference, atol=1e-4)


def test_progress_counter_counts_every_tile_rejected_ones_included(spark, sample_tiles, efficientnet_lite0):
    onnx_bytes, spec = efficientnet_lite0
    contents = [p.read_bytes() for p in sorted(sample_tiles.glob("*/*.jpg"))[::30]] + [b"", b"not an image"]
    tiles = spark.createDataFrame([(str(i), c) for i, c in enumerate(contents)], "tile_id string, content binary")
    counter = spark.sparkContext.accumulator(0)

    result = featurize_tiles_spark(tiles, onnx_bytes, spec, batch_size=8, threads=1, num_partitions=3, progress=counter)

    assert result.count() == len(contents)
    assert counter.value == len(contents)
