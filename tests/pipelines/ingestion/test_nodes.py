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
