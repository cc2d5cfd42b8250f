"""Blob URLs reach Spark exactly as written; why kedro-datasets' Spark datasets cannot be used."""

import pytest
from kedro.io.core import DatasetError
from kedro_datasets._utils.databricks_utils import parse_spark_filepath, to_spark_path
from kedro_datasets.spark import SparkDataset

from aerial_kedro.blob.urls import BlobUrl, BlobUrlError
from aerial_kedro.datasets.blob_spark_dataset import (
    BlobAccess,
    BlobSparkDataset,
    BlobSparkMLModelDataset,
    hadoop_settings,
)

PRODUCTION = "wasbs://tiles@aerialstore.blob.core.windows.net/eurosat/2024"
EMULATOR = "wasb://tiles@devstoreaccount1.blob.localhost/eurosat"
HADOOP_EMULATOR_ACCOUNT = "wasb://tiles@devstoreaccount1/eurosat"
ADLS = "abfss://tiles@aerialstore.dfs.core.windows.net/eurosat"


@pytest.mark.parametrize("url", [PRODUCTION, EMULATOR, HADOOP_EMULATOR_ACCOUNT, ADLS])
def test_urls_pass_through_unchanged(url):
    assert str(BlobUrl.parse(url)) == url
    assert BlobSparkDataset(filepath=url)._describe()["filepath"] == url
    assert BlobSparkMLModelDataset(filepath=url)._describe()["filepath"] == url


def test_url_parts():
    url = BlobUrl.parse(PRODUCTION)
    assert (url.scheme, url.container, url.host, url.path) == ("wasbs", "tiles", "aerialstore.blob.core.windows.net", "eurosat/2024")
    assert url.account == "aerialstore"
    assert BlobUrl.parse(EMULATOR).account == "devstoreaccount1"
    assert BlobUrl.parse(HADOOP_EMULATOR_ACCOUNT).account == "devstoreaccount1"


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("wasbs://aerialstore.blob.core.windows.net/eurosat", "names no container"),
        ("wasbs://Tiles@aerialstore.blob.core.windows.net/x", "not a valid container name"),
        ("wasbs://ab@aerialstore.blob.core.windows.net/x", "not a valid container name"),
        ("s3a://bucket/x", "not an Azure Blob URL"),
        ("data/02_intermediate", "not an Azure Blob URL"),
    ],
)
def test_bad_urls_are_named(url, complaint):
    with pytest.raises(BlobUrlError, match=complaint):
        BlobUrl.parse(url)
    with pytest.raises(DatasetError, match=complaint):
        BlobSparkDataset(filepath=url)


def test_credentials_become_hadoop_settings_for_the_exact_account_host():
    key = "a2V5IGZvciBhIHRlc3Qgb25seQ=="  # base64 of "key for a test only"
    settings = hadoop_settings(BlobUrl.parse(PRODUCTION), BlobAccess(account_key=key), {"fs.azure.io.retry.max.retries": 1})
    assert settings == {
        "fs.azure.io.retry.max.retries": "1",
        "fs.azure.account.key.aerialstore.blob.core.windows.net": key,
    }
    sas = hadoop_settings(BlobUrl.parse(PRODUCTION), BlobAccess(sas_token="?sv=x&sig=y"), None)
    assert sas == {"fs.azure.sas.tiles.aerialstore.blob.core.windows.net": "sv=x&sig=y"}


def test_credentials_are_never_shown():
    dataset = BlobSparkDataset(filepath=PRODUCTION, credentials={"account_key": "c2VjcmV0"})
    assert "c2VjcmV0" not in str(dataset) and "c2VjcmV0" not in repr(dataset._describe())


def test_unknown_credential_keys_and_impossible_combinations_are_named():
    with pytest.raises(DatasetError, match="Unknown credentials key.*accountkey"):
        BlobSparkDataset(filepath=PRODUCTION, credentials={"accountkey": "x"})
    with pytest.raises(DatasetError, match="Azurite serves plain-HTTP Blob API only"):
        BlobSparkDataset(filepath=ADLS, credentials={"emulator_endpoint": "http://127.0.0.1:10000"})
    with pytest.raises(DatasetError, match="SAS token needs wasbs"):
        BlobSparkDataset(filepath=ADLS, credentials={"sas_token": "sv=x"})


# The two kedro-datasets 9.6 behaviours BlobSparkDataset exists for. When an upgrade fixes them,
# these tests fail: then the catalogs can move back to kedro-datasets' Spark datasets.
def test_kedro_datasets_spark_dataset_rejects_wasb():
    for url in (PRODUCTION, EMULATOR):
        with pytest.raises(ValueError, match="Protocol not known: wasb"):
            SparkDataset(filepath=url)


def test_kedro_datasets_spark_dataset_v2_drops_container_and_account_from_wasb():
    expected = {PRODUCTION: "wasbs:///eurosat/2024", EMULATOR: "wasb:///eurosat"}
    for url, mangled in expected.items():
        assert to_spark_path(*parse_spark_filepath(url)) == mangled
