import numpy as np
import pandas as pd

from aerial_kedro.featurizers.decode import decode_tile
from aerial_kedro.featurizers.runner import OnnxFeaturizer
from aerial_kedro.spark_inference import featurize_tiles_spark, spread_over


def test_spark_features_equal_a_bare_onnxruntime_loop(spark, sample_tiles, efficientnet_lite0):
    onnx_bytes, spec = efficientnet_lite0
    paths = sorted(sample_tiles.glob("*/*.jpg"))[::6]
    frame = pd.DataFrame({"tile_id": [p.name for p in paths], "content": [p.read_bytes() for p in paths]})
    frame.loc[len(frame)] = ["broken.jpg", paths[0].read_bytes()[:300]]
    frame.loc[len(frame)] = ["empty.jpg", b""]
    tiles = spark.createDataFrame(frame, "tile_id string, content binary")

    result = featurize_tiles_spark(spread_over(tiles, 3), onnx_bytes, spec, batch_size=16, threads=1).toPandas()

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

    result = featurize_tiles_spark(spread_over(tiles, 3), onnx_bytes, spec, batch_size=8, threads=1, progress=counter)

    assert result.count() == len(contents)
    assert counter.value == len(contents)


def test_items_are_featurized_in_bounded_batches_in_order(sample_tiles, efficientnet_lite0):
    from aerial_kedro.chip_rows import EMPTY, SCORED
    from aerial_kedro.spark_inference import infer_items, read_tile_bytes

    onnx_bytes, spec = efficientnet_lite0
    featurizer = OnnxFeaturizer(onnx_bytes, spec)
    paths = sorted(sample_tiles.glob("*/*.jpg"))[:7]
    seen: list[int] = []

    def reads():
        for number, path in enumerate(paths):
            seen.append(number)
            yield read_tile_bytes(path.read_bytes())
            if number == 2:
                yield None, None, EMPTY, "mostly nodata"

    results = infer_items(reads(), featurizer, batch_size=3)
    first = [next(results) for _ in range(3)]
    assert seen == [0, 1, 2]  # the first batch is out before the fourth tile is even read
    rest = list(results)
    statuses = [status for _, _, status, _ in first + rest]
    assert statuses == [SCORED] * 3 + [EMPTY] + [SCORED] * 4
    assert (first + rest)[3][0] is None and (first + rest)[3][3] == "mostly nodata"
    reference = featurizer.features([decode_tile(p.read_bytes()) for p in paths])
    ours = np.stack([vector for vector, _, status, _ in first + rest if status == SCORED])
    np.testing.assert_allclose(ours, reference, atol=1e-4)


def test_a_listing_reason_rejects_the_row_unread(spark, sample_tiles, efficientnet_lite0):
    onnx_bytes, spec = efficientnet_lite0
    good = (sample_tiles / "Forest" / "Forest_1.jpg").read_bytes()
    tiles = spark.createDataFrame(
        [("a", good, None), ("b", good, "repeat of a")], "tile_id string, content binary, reason string"
    )
    result = featurize_tiles_spark(tiles.coalesce(1), onnx_bytes, spec, 4, 1).toPandas().set_index("tile_id")
    assert result.loc["a", "error"] is None and len(result.loc["a", "features"]) == 1280
    assert result.loc["b", "error"] == "repeat of a" and result.loc["b", "features"] is None


def _physical_plan(frame) -> str:
    return frame._jdf.queryExecution().executedPlan().toString()


def test_a_scan_is_spread_without_moving_its_bytes_when_it_has_partitions_enough(spark, sample_tiles):
    split_size = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "1")  # one file per scan partition
    try:
        scan = spark.read.format("binaryFile").load(str(sample_tiles / "Forest"))
        assert scan.rdd.getNumPartitions() == 30

        merged = spread_over(scan, 3)
        assert merged.rdd.getNumPartitions() == 3
        assert "Exchange" not in _physical_plan(merged) and "Coalesce 3" in _physical_plan(merged)
        assert sorted(merged.select("path").collect()) == sorted(scan.select("path").collect())

        shuffled = spread_over(scan, 32)  # too few to merge: spread by a shuffle
        assert shuffled.rdd.getNumPartitions() == 32
        assert "RoundRobinPartitioning" in _physical_plan(shuffled)
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", split_size)
