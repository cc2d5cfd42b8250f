import pytest

from aerial_kedro.pipelines.ingestion.nodes import build_tile_index


@pytest.fixture(scope="module")
def raw_tiles(spark, sample_tiles):
    return spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(str(sample_tiles))


def _counts(index, column="label"):
    return {row[0]: row[1] for row in index.groupBy(column).count().collect()}


def test_index_has_stable_ids_labels_and_a_stratified_split(raw_tiles):
    index = build_tile_index(raw_tiles, {"test_fraction": 0.2, "sample_frac": 1.0}, seed=42).cache()
    assert index.count() == 300
    assert index.select("tile_id").distinct().count() == 300
    assert set(_counts(index).values()) == {30}
    test = index.where("split = 'test'")
    assert set(_counts(test).values()) == {6}  # 20 % of every class
    row = index.where("tile_id = 'Forest/Forest_7.jpg'").first()
    assert row["label"] == "Forest" and row["uri"].endswith("eurosat-sample/Forest/Forest_7.jpg")


def test_split_is_seeded_and_independent_of_partitioning(raw_tiles):
    params = {"test_fraction": 0.2, "sample_frac": 1.0}
    first = {r["tile_id"] for r in build_tile_index(raw_tiles, params, 7).where("split='test'").collect()}
    again = {r["tile_id"] for r in build_tile_index(raw_tiles.repartition(7), params, 7).where("split='test'").collect()}
    other = {r["tile_id"] for r in build_tile_index(raw_tiles, params, 8).where("split='test'").collect()}
    assert first == again
    assert first != other


def test_sample_frac_keeps_a_stratified_share(raw_tiles):
    index = build_tile_index(raw_tiles, {"test_fraction": 0.2, "sample_frac": 0.5}, seed=1)
    assert set(_counts(index).values()) == {15}
    assert set(_counts(index.where("split='test'")).values()) == {3}


def test_listing_audit_keeps_real_paths_and_reports_links(tmp_path, sample_tiles):
    import os

    from aerial_kedro.pipelines.ingestion.nodes import audit_listing

    (tmp_path / "Forest").mkdir()
    tile = tmp_path / "Forest" / "Forest_1.jpg"
    tile.write_bytes((sample_tiles / "Forest" / "Forest_1.jpg").read_bytes())
    os.symlink(tmp_path, tmp_path / "Forest" / "loop")
    os.symlink(tmp_path / "nowhere.jpg", tmp_path / "Forest" / "gone.jpg")
    listed = [f"file:{tile}", f"file:{tmp_path}/Forest/loop/Forest/Forest_1.jpg", "wasbs://c@a/x/y.jpg"]

    kept, rejected = audit_listing(listed)

    assert kept == [f"file:{tile}", "wasbs://c@a/x/y.jpg"]
    reasons = dict(rejected)
    assert reasons[f"file:{tmp_path}/Forest/loop/Forest/Forest_1.jpg"].startswith(f"repeat of file:{tile}")
    assert reasons[f"file:{tmp_path}/Forest/gone.jpg"].startswith("dangling symbolic link")


@pytest.mark.parametrize(("sample_frac", "test_fraction"), [(1.0, 0.2), (1.0, 0.8), (0.5, 0.5), (0.1, 0.25), (0.3, 0.3)])
def test_the_pre_spark_split_sizes_are_the_spark_split(spark, sample_frac, test_fraction):
    from aerial_kedro.pipelines.ingestion.nodes import assign_split, label_tiles, stratified_sample
    from aerial_kedro.pipelines.ingestion.settings import split_sizes

    sizes = range(1, 26)
    uris = [(f"file:/t/c{n}/{i}.jpg",) for n in sizes for i in range(n)]
    tiles = label_tiles(spark.createDataFrame(uris, "uri string"))
    split = assign_split(stratified_sample(tiles, sample_frac, 5), test_fraction, 5)
    counted = {(r["label"], r["split"]): r["count"] for r in split.groupBy("label", "split").count().collect()}
    for n in sizes:
        assert split_sizes(n, sample_frac, test_fraction) == (
            counted.get((f"c{n}", "train"), 0), counted.get((f"c{n}", "test"), 0)
        ), n


def _raw(spark, folder):
    return spark.read.format("binaryFile").option("recursiveFileLookup", "true").load(str(folder))


def test_own_class_folders_are_the_classes_by_default(spark, tmp_path, sample_tiles):
    from conftest import copy_tiles_as

    from aerial_kedro.pipelines.ingestion.nodes import describe_class_scheme

    tiles = copy_tiles_as(sample_tiles, tmp_path, {"harbor": ("SeaLake", 3), "golfcourse": ("Pasture", 2)})
    index = build_tile_index(_raw(spark, tiles), {"test_fraction": 0.2, "sample_frac": 1.0}, seed=1)
    rows = index.toPandas()
    assert set(rows["label"]) == set(rows["source_label"]) == {"harbor", "golfcourse"}
    assert set(rows.groupby("label")["split"].agg(frozenset)) == {frozenset({"train", "test"})}
    scheme = describe_class_scheme("folders", index)
    assert scheme["name"] == "folders" and scheme["classes"] == ["golfcourse", "harbor"]
    assert describe_class_scheme("coarse", index)["classes"] == ["built", "cropland", "forest", "grassland", "water"]


def test_a_class_without_a_test_tile_fails_the_index_in_one_line(spark, tmp_path, sample_tiles):
    # What a remote tile store (listed by Spark only) meets: the same check as before Spark.
    from conftest import copy_tiles_as

    from aerial_kedro.errors import ParameterError

    tiles = copy_tiles_as(sample_tiles, tmp_path, {"harbor": ("SeaLake", 1), "golfcourse": ("Pasture", 3)})
    with pytest.raises(ParameterError) as error:
        build_tile_index(_raw(spark, tiles), {"test_fraction": 0.2, "sample_frac": 1.0}, seed=1)
    assert str(error.value).startswith("tiles_dir: class folder 'harbor' has 1 tile(s), 1 train and 0 test")
    assert "\n" not in str(error.value)
