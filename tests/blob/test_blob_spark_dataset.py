"""BlobSparkDataset / BlobSparkMLModelDataset against a real Azurite through hadoop-azure."""

from __future__ import annotations

import time

import pytest
from blob.azurite import EMULATOR_HOST, EMULATOR_KEY, WRONG_KEY
from kedro.io.core import DatasetError
from pyspark.ml import Pipeline
from pyspark.ml.feature import StringIndexer

from aerial_kedro.datasets.blob_spark_dataset import (
    BlobSparkDataset,
    BlobSparkMLModelDataset,
    _java_class,
)

# As in conf/azurite/spark.yml: a dead endpoint must not be retried for minutes.
FAIL_FAST = {
    "fs.azure.io.retry.max.retries": 1,
    "fs.azure.io.retry.backoff.interval": 500,
    "fs.azure.io.retry.min.backoff.interval": 500,
    "fs.azure.io.retry.max.backoff.interval": 1000,
}


def dataset(url: str, endpoint: str, key: str = EMULATOR_KEY, **kwargs) -> BlobSparkDataset:
    credentials = {"account_key": key, "emulator_endpoint": endpoint}
    return BlobSparkDataset(filepath=url, credentials=credentials, hadoop_conf=FAIL_FAST, **kwargs)


def test_round_trip_on_the_emulator_host(blob_spark, azurite, blob_service, container_name):
    url = f"wasb://{container_name}@{EMULATOR_HOST}/04_feature/features"
    features = dataset(url, azurite.endpoint, save_args={"mode": "overwrite", "partitionBy": ["featurizer"]})
    assert not features.exists()
    frame = blob_spark.createDataFrame([(f"t{i}", i % 2 and "a" or "b") for i in range(10)], "tile_id string, featurizer string")
    features.save(frame)
    assert features.exists()
    loaded = features.load()
    assert loaded.count() == 10 and sorted(r[0] for r in loaded.select("featurizer").distinct().collect()) == ["a", "b"]
    assert all(path.startswith(f"{url}/featurizer=") for path in loaded.inputFiles())
    # the blobs are where the URL says: container, then the path, then Spark's partition folders
    names = [blob.name for blob in blob_service.get_container_client(container_name).list_blobs()]
    assert any(name.startswith("04_feature/features/featurizer=a/part-") for name in names)


def test_production_style_url_reaches_the_same_account(blob_spark, azurite, blob_service, container_name):
    """`wasb://c@devstoreaccount1.blob.core.windows.net/...` as written in a real catalog: with the
    emulator endpoint set, every request of the azure-storage client goes to Azurite (no DNS)."""
    url = f"wasb://{container_name}@devstoreaccount1.blob.core.windows.net/02_intermediate/tile_index"
    tile_index = dataset(url, azurite.endpoint, save_args={"mode": "overwrite"})
    tile_index.save(blob_spark.range(7).withColumnRenamed("id", "n"))
    assert tile_index.load().count() == 7
    assert any(blob.name.endswith(".parquet") for blob in blob_service.get_container_client(container_name).list_blobs())


def test_binary_files_listing_and_paths(blob_spark, azurite, blob_service, container_name):
    container = blob_service.get_container_client(container_name)
    container.create_container()
    for name in ("Forest/a.jpg", "River/b.jpg", "River/notes.txt"):
        container.upload_blob(f"tiles/{name}", b"\xff\xd8 not really a jpeg")
    url = f"wasb://{container_name}@{EMULATOR_HOST}/tiles"
    tiles = dataset(url, azurite.endpoint, file_format="binaryFile",
                    load_args={"recursiveFileLookup": True, "pathGlobFilter": "*.jpg"}).load()
    assert sorted(r["path"] for r in tiles.select("path").collect()) == [f"{url}/Forest/a.jpg", f"{url}/River/b.jpg"]
    assert sorted(tiles.inputFiles()) == [f"{url}/Forest/a.jpg", f"{url}/River/b.jpg"]


def test_spark_ml_model_round_trip(blob_spark, azurite, container_name):
    url = f"wasb://{container_name}@{EMULATOR_HOST}/06_models/efficientnet_lite0/logistic_regression"
    models = BlobSparkMLModelDataset(filepath=url, credentials={"account_key": EMULATOR_KEY, "emulator_endpoint": azurite.endpoint}, hadoop_conf=FAIL_FAST)
    frame = blob_spark.createDataFrame([("Forest",), ("River",)], "label string")
    model = Pipeline(stages=[StringIndexer(inputCol="label", outputCol="y")]).fit(frame)
    assert not models.exists()
    models.save(model)
    assert models.exists()
    assert list(models.load().stages[0].labels) == ["Forest", "River"]


def one_line_failure(action) -> tuple[str, float]:
    started = time.perf_counter()
    with pytest.raises(DatasetError) as caught:
        action()
    return str(caught.value), time.perf_counter() - started


def test_stopped_azurite_fails_fast_with_one_line(blob_spark, stopped_azurite, container_name):
    url = f"wasb://{container_name}@{EMULATOR_HOST}/02_intermediate/tile_index"
    message, seconds = one_line_failure(dataset(url, stopped_azurite.endpoint).load)
    assert message == (
        f"Azure Blob storage account 'devstoreaccount1' is not reachable at {stopped_azurite.endpoint} "
        f"(is Azurite running?): cannot open {url}"
    )
    assert seconds < 15
    message, seconds = one_line_failure(lambda: dataset(url, stopped_azurite.endpoint).save(blob_spark.range(2)))
    assert "is not reachable" in message and "\n" not in message and seconds < 15


def test_missing_container_is_named(blob_spark, azurite, container_name):
    url = f"wasb://{container_name}@{EMULATOR_HOST}/eurosat"
    message, seconds = one_line_failure(dataset(url, azurite.endpoint, file_format="binaryFile").load)
    assert message == f"Container '{container_name}' does not exist in storage account 'devstoreaccount1' ({url})"
    assert seconds < 15


def test_missing_path_in_an_existing_container_keeps_sparks_message(blob_spark, azurite, blob_service, container_name):
    blob_service.create_container(container_name)
    url = f"wasb://{container_name}@{EMULATOR_HOST}/nothing/here"
    with pytest.raises(Exception, match="PATH_NOT_FOUND"):
        dataset(url, azurite.endpoint).load()


def test_wrong_key_is_named(blob_spark, azurite, blob_service, container_name):
    blob_service.create_container(container_name)
    url = f"wasb://{container_name}@{EMULATOR_HOST}/02_intermediate/tile_index"
    message, seconds = one_line_failure(dataset(url, azurite.endpoint, key=WRONG_KEY).load)
    assert message == (
        f"Azure Blob storage account 'devstoreaccount1' rejected the credentials for {url} "
        "(wrong account key or SAS token?)"
    )
    assert seconds < 15


def test_missing_hadoop_azure_is_named(blob_spark):
    with pytest.raises(DatasetError, match=r"hadoop-azure is not on Spark's classpath: run scripts/fetch_jars.sh"):
        _java_class(blob_spark.sparkContext._jvm, "com.microsoft.azure.storage.NoSuchClass")
