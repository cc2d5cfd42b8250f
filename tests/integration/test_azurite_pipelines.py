"""`train` then `score` with `--env=azurite`: inputs staged in Azurite, every output in its blobs.

A real Azurite on a free port (AZURITE_BLOB_PORT tells conf/azurite/credentials.yml which one),
the real upload CLI, the test session's Spark with hadoop-azure, the raster read by GDAL's /vsiaz/
(AZURE_STORAGE_CONNECTION_STRING); outputs are read back with azure-storage-blob, not with the
pipeline's own datasets.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import rasterio
from azure.storage.blob import ContainerClient
from blob.azurite import HADOOP_AZURE_JARS, Azurite, require
from conftest import CZECH_SCENE as SCENE
from conftest import copy_sample_tiles, crop_raster, make_project_copy, run_kedro, versioned_blob
from PIL import Image

pytestmark = pytest.mark.slow

TILES_URL = "wasb://raw@devstoreaccount1.blob.localhost/eurosat-sample"
# Fewer trees than conf/base (150), 20 tiles of each class (40 held out) and the scene's
# top-left 10 x 6 chips under the scene's own name keep this test short; the blob I/O is the same.
SMALL_FOREST = {"random_forest.classifier.hyperparameters.numTrees": 20}
TILES_PER_CLASS, N_TILES, N_TEST = 20, 200, 40
SCENE_CHIPS = 60


def blob_cli(connection_string: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "aerial_kedro.blob", *args],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "AZURE_STORAGE_CONNECTION_STRING": connection_string},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@contextmanager
def environment(**variables: str) -> Iterator[None]:
    previous = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def executor_environment(spark, **variables: str) -> Iterator[None]:
    """GDAL in the Python workers reads /vsiaz/ credentials from their environment. A fresh
    `kedro run` inherits it from the shell; this test's JVM (and its workers) started before this
    Azurite existed, so the variables go in as executor env vars (what spark.executorEnv.* sets),
    which new Python workers receive."""
    environment = spark.sparkContext.environment
    previous = {name: environment.get(name) for name in variables}
    environment.update(variables)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                environment.pop(name, None)
            else:
                environment[name] = value


@pytest.fixture(scope="module")
def azurite_runs(tmp_path_factory, spark, sample_tiles) -> Iterator[tuple[Azurite, Path]]:
    """Stage sample tiles and (part of) the Czech scene with the upload CLI, then run `train` and
    `score` in a project copy; nothing is written to the local disk."""
    require(HADOOP_AZURE_JARS, "bash scripts/fetch_jars.sh")
    root = tmp_path_factory.mktemp("azurite-runs")
    classes = sorted(path.name for path in sample_tiles.iterdir() if path.is_dir())
    copy_sample_tiles(sample_tiles, root / "tiles", dict.fromkeys(classes, TILES_PER_CLASS))
    (root / "scene").mkdir()
    scene = crop_raster(SCENE, root / "scene" / SCENE.name, 640, 384)
    server = Azurite.start(root / "azurite")
    try:
        blob_cli(server.connection_string, "upload", str(root / "tiles"), "raw/eurosat-sample")
        blob_cli(server.connection_string, "upload", str(scene), "raw/rasters")
        blob_cli(server.connection_string, "mkcontainer", "aerial")
        project = make_project_copy(root / "project")
        assert (project / "conf" / "azurite" / "globals.yml").is_file()
        with environment(AZURITE_BLOB_PORT=str(server.port), AZURE_STORAGE_CONNECTION_STRING=server.connection_string), \
                executor_environment(spark, AZURE_STORAGE_CONNECTION_STRING=server.connection_string):
            run_kedro(project, "train", env="azurite", **SMALL_FOREST)
            run_kedro(project, "score", env="azurite")
        yield server, project
    finally:
        server.stop()


@pytest.fixture(scope="module")
def outputs(azurite_runs) -> ContainerClient:
    server, _ = azurite_runs
    return ContainerClient.from_connection_string(server.connection_string, "aerial")


def read_json(container: ContainerClient, name: str) -> dict:
    return json.loads(container.download_blob(name).readall())


def test_metrics_summary_in_blob(outputs):
    summary = read_json(outputs, "08_reporting/metrics_summary.json")
    assert summary["featurizer"] == "efficientnet_lite0"
    assert summary["data_source"] == TILES_URL
    for model in ("logistic_regression", "random_forest"):
        assert summary[model]["n_test"] == N_TEST
        assert summary[model]["accuracy"] > 0.5, summary[model]  # chance: 0.1
        assert len(summary[model]["per_class"]) == 10


def test_models_are_spark_pipeline_models_in_blob(outputs):
    for model in ("logistic_regression", "random_forest"):
        entry = f"06_models/efficientnet_lite0/{model}"
        names = {blob.name for blob in outputs.list_blobs(name_starts_with=entry + "/")}
        prefix = versioned_blob(names, entry) + "/"
        metadata = json.loads(outputs.download_blob(f"{prefix}metadata/part-00000").readall())
        assert metadata["class"] == "org.apache.spark.ml.PipelineModel"
        assert any(name.startswith(f"{prefix}stages/") for name in names)


def test_features_are_parquet_blobs_partitioned_by_featurizer(outputs):
    prefix = "04_feature/features/featurizer=efficientnet_lite0/"
    parts = [blob.name for blob in outputs.list_blobs(name_starts_with=prefix) if blob.name.endswith(".parquet")]
    assert parts
    tables = [pq.read_table(io.BytesIO(outputs.download_blob(name).readall())) for name in parts]
    assert sum(table.num_rows for table in tables) == N_TILES
    first = tables[0].to_pylist()[0]
    assert len(first["features"]) == 1968 and first["split"] in ("train", "test")


def test_reports_featurizer_and_intermediate_data_in_blob(outputs, azurite_runs):
    confusion = read_json(outputs, "08_reporting/logistic_regression/confusion_matrix.json")
    assert sum(map(sum, confusion["matrix"])) == N_TEST
    with Image.open(io.BytesIO(outputs.download_blob("08_reporting/random_forest/confusion_matrix.png").readall())) as png:
        assert png.format == "PNG" and png.width > 400
    featurizers = {blob.name for blob in outputs.list_blobs(name_starts_with="06_models/featurizers/")}
    onnx_blob = versioned_blob(featurizers, "06_models/featurizers/efficientnet_lite0.onnx")
    assert outputs.get_blob_client(onnx_blob).get_blob_properties().size > 1_000_000
    spec_blob = versioned_blob(featurizers, "06_models/featurizers/efficientnet_lite0.json")
    assert read_json(outputs, spec_blob)["feature_dim"] == 1968
    names = {blob.name for blob in outputs.list_blobs(name_starts_with="02_intermediate/")}
    assert any(name.startswith("02_intermediate/tile_index/part-") for name in names)
    assert any(name.startswith("02_intermediate/rejected_tiles/") for name in names)
    _, project = azurite_runs
    assert not (project / "data").exists()  # nothing went to the local disk


def test_score_of_the_czech_scene_read_from_blob(outputs):
    shares = read_json(outputs, "08_reporting/maps/czech_s2_tci_20220319/class_shares.json")
    n = SCENE_CHIPS
    assert shares["chips"] == {"planned": n, "scored": n, "empty": 0, "unreadable": 0, "pending": 0}
    assert shares["source"] == "/vsiaz/raw/rasters/czech_s2_tci_20220319.tif"
    assert shares["complete"] and shares["chips"]["scored"] == n
    chips = read_json(outputs, "08_reporting/maps/czech_s2_tci_20220319/land_use_chips.geojson")
    assert len(chips["features"]) == n
    with rasterio.MemoryFile(outputs.download_blob("08_reporting/maps/czech_s2_tci_20220319/land_use_classes.tif").readall()) as memory:
        with memory.open() as classes:
            assert classes.crs.to_epsg() == 32633 and classes.count == 1
    with Image.open(io.BytesIO(outputs.download_blob("08_reporting/maps/czech_s2_tci_20220319/land_use_map.png").readall())) as png:
        assert png.format == "PNG"
    run_id = shares["run_id"]
    names = [blob.name for blob in outputs.list_blobs(name_starts_with=f"07_model_output/scoring/predictions/run_id={run_id}/")]
    assert any(name.endswith(".parquet") for name in names)
    assert any(name.endswith("_COMPLETE.json") for name in names)
