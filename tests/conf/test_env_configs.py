"""The `hdinsight` and `azurite` environments resolve offline: every dataset in Blob storage.

No Spark, no network: datasets are instantiated from the resolved config, never loaded.
"""

from __future__ import annotations

import pytest
import yaml

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
    catalog.write_text("metrics_summary:\n  type: json.JSONDataset\n"
                       "  filepath: data/08_reporting/metrics_summary.json\n")
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


# ---------- environments override globals, not the catalog ----------

ENVIRONMENTS = ("local", "azurite", "hdinsight")
# Dataset factory placeholders, filled in as the pipelines do (classifier and change-date namespaces).
NAMESPACES = {"{model}": ("logistic_regression", "random_forest"), "{date}": ("before", "after")}


def resolved_catalog(project, env: str) -> dict[str, dict]:
    """``{dataset name: resolved config}`` of ``env`` (real config loader, credentials filled in);
    every dataset is also instantiated, never loaded."""
    from kedro.config import MissingConfigException, OmegaConfigLoader
    from kedro.io import DataCatalog

    from aerial_kedro.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(str(project / "conf"), env=env, **CONFIG_LOADER_ARGS)
    config = loader["catalog"]
    try:
        credentials = loader["credentials"]
    except MissingConfigException:  # `local` keeps none in the repository
        credentials = {}
    catalog = DataCatalog.from_config(config, credentials)
    resolved = {}
    for key in (key for key in config if not key.startswith("_")):
        placeholder = next((p for p in NAMESPACES if p in key), None)
        for name in [key.replace(placeholder, ns) for ns in NAMESPACES[placeholder]] if placeholder else [key]:
            assert catalog.get(name) is not None, f"{env}: {name}"
            resolved[name] = catalog.config_resolver.config.get(name) or catalog.config_resolver.resolve_pattern(name)
    return resolved


def filepath(entry: dict) -> str | None:
    return entry.get("filepath") or (entry.get("dataset") or {}).get("filepath")


@pytest.fixture
def env_catalogs(hdinsight_env, monkeypatch, project) -> dict[str, dict[str, dict]]:
    monkeypatch.setenv("AZURITE_BLOB_PORT", "10123")
    return {env: resolved_catalog(project, env) for env in ENVIRONMENTS}


def test_every_environment_has_the_same_datasets(env_catalogs):
    local = env_catalogs["local"]
    assert len(local) > 50 and {"features", "scoring.class_geotiff", "after.scoring.map_png"} <= set(local)
    for env in ("azurite", "hdinsight"):
        assert set(env_catalogs[env]) == set(local), env
        assert {n for n, e in env_catalogs[env].items() if filepath(e)} == {n for n, e in local.items() if filepath(e)}


def test_local_keeps_every_dataset_under_data(env_catalogs):
    located = {name: filepath(entry) for name, entry in env_catalogs["local"].items() if filepath(entry)}
    assert len(located) > 50
    for name, path in located.items():
        assert path.startswith("data/") and "://" not in path, (name, path)
    assert env_catalogs["local"]["features"]["type"] == "spark.SparkDataset"
    assert env_catalogs["local"]["features"]["credentials"] is None


SPARK_DATASETS = {"raw_tiles", "tile_index", "rejected_tiles", "tile_features", "features",
                  "random_forest.test_predictions", "random_forest.classifier_model", "scoring_model",
                  "scoring.predictions", "scoring.completed_chunks", "before.scoring.predictions",
                  "after.scoring.completed_chunks", "logistic_regression.test_predictions",
                  "logistic_regression.classifier_model", "before.scoring.completed_chunks",
                  "after.scoring.predictions"}


@pytest.mark.parametrize(("env", "scheme", "account", "spark_credentials", "files_credentials"), [
    ("azurite", "wasb", "devstoreaccount1.blob.localhost", "emulator_endpoint", "connection_string"),
    ("hdinsight", "wasbs", "aerialstore.blob.core.windows.net", "account_key", "account_key"),
])
def test_blob_environments_put_spark_data_on_wasb_and_files_on_abfs(
    env_catalogs, env, scheme, account, spark_credentials, files_credentials
):
    entries = env_catalogs[env]
    for name, entry in entries.items():
        path = filepath(entry)
        if path is None:  # MLflow metrics: logged to the tracking server
            continue
        credentials = entry.get("credentials") or (entry.get("dataset") or {}).get("credentials")
        if name in SPARK_DATASETS:
            container = "raw" if name == "raw_tiles" else "aerial"
            assert path.startswith(f"{scheme}://{container}@{account}/"), (name, path)
            if not name.endswith(("scoring.predictions", "scoring.completed_chunks")):  # Spark's own FS
                assert spark_credentials in credentials, name
        else:
            assert path.startswith("abfs://aerial/") and files_credentials in credentials, (name, path)
    assert entries["features"]["type"].endswith("BlobSparkDataset")
    assert entries["scoring_model"]["type"].endswith("BlobSparkMLModelDataset")


def test_environments_override_globals_and_restate_no_catalog_entry(project):
    """The catalog is written once, in conf/base; an environment moves it with globals.yml keys
    that conf/base/globals.yml defines (a key it misspells would silently change nothing)."""
    base = yaml.safe_load((project / "conf" / "base" / "globals.yml").read_text())
    for env in ("azurite", "hdinsight"):
        assert not list((project / "conf" / env).glob("catalog*.yml")), env
        text = (project / "conf" / env / "globals.yml").read_text()
        overrides = yaml.safe_load(text)
        assert {"spark_root", "spark_dataset", "spark_model_dataset", "files_root"} <= set(overrides)
        # Keys base lacks only as the file's own building blocks (hdinsight's storage_account).
        own = set(overrides) - set(base)
        assert all(f"${{{key}}}" in text for key in own), f"{env}: {own} not in conf/base/globals.yml"


@pytest.mark.parametrize("env", ["local", "azurite"])
def test_a_nested_runtime_parameter_changes_one_key_in_every_environment(monkeypatch, project, env):
    """`--params=random_forest.classifier.hyperparameters.numTrees=20` keeps the block's other keys
    (conf/azurite holds a parameters file of its own: Kedro's default merge dropped them there)."""
    from kedro.config import OmegaConfigLoader

    from aerial_kedro.settings import CONFIG_LOADER_ARGS

    monkeypatch.setenv("AZURITE_BLOB_PORT", "10123")
    runtime = {"random_forest": {"classifier": {"hyperparameters": {"numTrees": 20}}}}
    params = OmegaConfigLoader(str(project / "conf"), env=env, runtime_params=runtime,
                               **CONFIG_LOADER_ARGS)["parameters"]  # fmt: skip
    classifier = params["random_forest"]["classifier"]
    assert classifier["type"] == "random_forest" and classifier["hyperparameters"]["numTrees"] == 20
    assert classifier["hyperparameters"]["maxDepth"] == 12
    assert params["scoring"]["chip_px"] == 64


def test_azurite_fails_fast_for_every_spark_access(project):
    """hadoop-azure's 30 retries with back-off would hide a stopped emulator for minutes."""
    from kedro.config import OmegaConfigLoader

    from aerial_kedro.settings import CONFIG_LOADER_ARGS

    spark = OmegaConfigLoader(str(project / "conf"), env="azurite", **CONFIG_LOADER_ARGS)["spark"]
    assert spark["spark.hadoop.fs.azure.io.retry.max.retries"] == 1
    assert spark["spark.hadoop.fs.azure.io.retry.max.backoff.interval"] <= 1000
