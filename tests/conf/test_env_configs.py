"""The `hdinsight` and `azurite` environments resolve offline: every dataset in Blob storage.

No Spark, no network: datasets are instantiated from the resolved config, never loaded.
"""

from __future__ import annotations

import pytest

from aerial_kedro.blob.config_check import ConfigCheckError, check_environment, load_environment

HDINSIGHT_ENV = {
    "AZURE_STORAGE_ACCOUNT": "aerialstore",
    # Made-up, well-formed key: the config is only resolved, never used to connect.
    "AZURE_STORAGE_KEY": "bm90IGEgcmVhbCBrZXk7IG9ubHkgcmVzb2x2ZWQgaW4gYSB0ZXN0",
    "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000",
}


@pytest.fixture
def hdinsight_env(monkeypatch):
    for name, value in HDINSIGHT_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from conftest import make_project_copy

    return make_project_copy(tmp_path_factory.mktemp("env-configs") / "project")


def test_every_hdinsight_dataset_is_in_the_account_from_the_environment(hdinsight_env, project):
    report = check_environment(project, "hdinsight")
    persisted = {d.name: d for d in report.persisted}
    assert {"raw_tiles", "features", "metrics_summary", "random_forest.classifier_model", "scoring_model",
            "scoring.predictions", "scoring.class_geotiff"} <= set(persisted)
    for dataset in persisted.values():
        location = dataset.location
        if location.startswith(("wasbs://", "abfss://")):
            container = location.split("://", 1)[1].split("@", 1)[0]
            assert container in ("raw", "aerial") and "@aerialstore." in location, dataset
        else:
            assert location.startswith("abfs://aerial/") and location.endswith("[account aerialstore]"), dataset
    assert persisted["raw_tiles"].location == "wasbs://raw@aerialstore.blob.core.windows.net/eurosat"
    assert persisted["features"].type == "BlobSparkDataset"


def test_hdinsight_secrets_come_from_the_environment_only(hdinsight_env, project):
    config = load_environment(project, "hdinsight")
    assert config["credentials"]["hdinsight_blob"]["account_key"] == HDINSIGHT_ENV["AZURE_STORAGE_KEY"]
    assert config["credentials"]["hdinsight_spark"]["account_key"] == HDINSIGHT_ENV["AZURE_STORAGE_KEY"]
    spark = config["spark"]
    assert spark["spark.master"] == "yarn" and spark["spark.submit.deployMode"] == "client"
    assert spark["spark.executor.instances"] == 40 and spark["spark.executor.cores"] == 4
    raw = (project / "conf" / "hdinsight" / "credentials.yml").read_text()
    assert HDINSIGHT_ENV["AZURE_STORAGE_KEY"] not in raw and "${oc.env:AZURE_STORAGE_KEY}" in raw


def test_missing_variables_are_all_named(monkeypatch, project):
    for name in HDINSIGHT_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT", "aerialstore")
    with pytest.raises(ConfigCheckError) as caught:
        check_environment(project, "hdinsight")
    assert str(caught.value) == (
        "Environment 'hdinsight' needs environment variable(s) that are not set: "
        "AZURE_STORAGE_KEY, MLFLOW_TRACKING_URI "
        "(used in conf/hdinsight/credentials.yml, conf/hdinsight/mlflow.yml)"
    )


def test_a_dataset_left_on_local_disk_is_named(hdinsight_env, tmp_path):
    from conftest import make_project_copy

    broken = make_project_copy(tmp_path / "broken")
    catalog = broken / "conf" / "hdinsight" / "catalog.yml"
    catalog.write_text(catalog.read_text().replace("${globals:files_root}/08_reporting/metrics_summary.json",
                                                   "data/08_reporting/metrics_summary.json"))
    with pytest.raises(ConfigCheckError, match=r"keeps datasets on a local disk: metrics_summary \(data/08_reporting"):
        check_environment(broken, "hdinsight")


def test_every_azurite_dataset_is_in_the_emulator(monkeypatch, project):
    monkeypatch.setenv("AZURITE_BLOB_PORT", "10123")
    report = check_environment(project, "azurite")
    for dataset in report.persisted:
        assert dataset.location.startswith(("wasb://raw@devstoreaccount1.blob.localhost/",
                                            "wasb://aerial@devstoreaccount1.blob.localhost/",
                                            "abfs://aerial/")), dataset
    credentials = load_environment(project, "azurite")["credentials"]
    assert credentials["azurite_spark"]["emulator_endpoint"] == "http://127.0.0.1:10123"
    assert "BlobEndpoint=http://127.0.0.1:10123/devstoreaccount1;" in credentials["azurite_blob"]["connection_string"]
