from aerial_kedro.pipelines.featurization.nodes import indexed_contents


def test_indexed_tiles_meet_their_bytes_without_a_shuffle_and_unscanned_ones_arrive_empty(spark):
    contents = spark.createDataFrame(
        [("file:/t/a.jpg", b"aa"), ("file:/t/b.jpg", b"bb"), ("file:/t/unlisted.jpg", b"cc")], "uri string, content binary"
    ).repartition(2)
    index = spark.createDataFrame(
        [("a", "file:/t/a.jpg", "Forest"), ("b", "file:/t/b.jpg", "River"), ("e", "file:/t/empty.jpg", "River")],
        "tile_id string, uri string, label string",
    )

    tiles = indexed_contents(index, contents)

    rows = {row.tile_id: (row.label, row.content) for row in tiles.collect()}
    assert rows == {"a": ("Forest", b"aa"), "b": ("River", b"bb"), "e": ("River", None)}
    scan_side = tiles._jdf.queryExecution().executedPlan().toString().split("Union")[1].split("LeftAnti")[0]
    assert "BroadcastHashJoin" in scan_side and "SortMergeJoin" not in scan_side
