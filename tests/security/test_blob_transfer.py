"""Item 8: blob download of Spark output, interrupted downloads, and upload of symbolic links.

Real Azurite, real Spark (hadoop-azure writes folder-marker blobs), the real CLI in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient
from blob.azurite import EMULATOR_HOST, EMULATOR_KEY, HADOOP_AZURE_JARS, Azurite, require

from aerial_kedro.datasets.blob_spark_dataset import BlobSparkDataset


@pytest.fixture(scope="module")
def azurite(tmp_path_factory):
    server = Azurite.start(tmp_path_factory.mktemp("azurite-transfer"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def service(azurite) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(azurite.connection_string)


def cli(*args: str, connection: str, wait: bool = True):
    env = {**os.environ, "AZURE_STORAGE_CONNECTION_STRING": connection}
    command = [sys.executable, "-m", "aerial_kedro.blob", *args]
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)


def test_download_of_spark_wasb_output(spark, azurite, service, tmp_path):
    """hadoop-azure marks every folder it creates with a 0-byte blob (metadata hdi_isfolder=true)."""
    require(HADOOP_AZURE_JARS, "bash scripts/fetch_jars.sh")
    service.create_container("spark-out")
    url = f"wasb://spark-out@{EMULATOR_HOST}/04_feature/features"
    frame = spark.createDataFrame([(f"t{i}", "ab"[i % 2]) for i in range(20)], "tile_id string, featurizer string")
    BlobSparkDataset(filepath=url, credentials={"account_key": EMULATOR_KEY, "emulator_endpoint": azurite.endpoint},
                     save_args={"mode": "overwrite", "partitionBy": ["featurizer"]}).save(frame)
    blobs = list(service.get_container_client("spark-out").list_blobs(include=["metadata"]))
    markers = [b.name for b in blobs if (b.metadata or {}).get("hdi_isfolder") == "true"]
    assert markers, [b.name for b in blobs]  # the situation this test is about

    result = cli("download", "spark-out/04_feature", str(tmp_path / "copy"), connection=azurite.connection_string)
    assert result.returncode == 0, result.stderr
    files = sorted(p.relative_to(tmp_path / "copy").as_posix() for p in (tmp_path / "copy").rglob("*") if p.is_file())
    expected = sorted(b.name.removeprefix("04_feature/") for b in blobs if b.name not in markers)
    assert files == expected and any(name.endswith(".parquet") for name in files)
    assert spark.read.parquet(str(tmp_path / "copy" / "features")).count() == 20


def test_an_interrupted_download_leaves_no_partial_file(tmp_path):
    server = Azurite.start(tmp_path / "azurite")
    try:
        BlobServiceClient.from_connection_string(server.connection_string).get_container_client(
            "big").create_container()
        BlobServiceClient.from_connection_string(server.connection_string).get_blob_client(
            "big", "scene.tif").upload_blob(os.urandom(192 << 20), max_concurrency=4)
        target = tmp_path / "copy"
        child = cli("download", "big", str(target), "--workers", "1", connection=server.connection_string, wait=False)
        deadline = time.monotonic() + 120
        while not any(p.stat().st_size > 0 for p in target.glob("scene.tif*") if p.is_file()):
            assert child.poll() is None and time.monotonic() < deadline, child.communicate()
            time.sleep(0.005)
    finally:
        server.stop()  # the storage goes away mid-transfer
    _, stderr = child.communicate(timeout=120)
    assert child.returncode == 1 and len(stderr.strip().splitlines()) == 1, stderr
    assert stderr.startswith("error: ")
    assert not (target / "scene.tif").exists()  # never a truncated file under the final name
    assert not list(target.glob("*.part"))


def test_a_local_write_failure_is_one_line(azurite, service, tmp_path):
    service.get_container_client("oserror").create_container()
    service.get_blob_client("oserror", "a/b.txt").upload_blob(b"x")
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("already here")
    result = cli("download", "oserror", str(not_a_folder), connection=azurite.connection_string)
    assert result.returncode == 1, result
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and str(not_a_folder) in result.stderr


def test_upload_skips_symbolic_links_unless_asked(azurite, service, tmp_path):
    folder = tmp_path / "tiles"
    (folder / "Forest").mkdir(parents=True)
    (folder / "Forest" / "a.jpg").write_bytes(b"jpeg")
    (folder / "Forest" / "passwd.jpg").symlink_to("/etc/passwd")
    (folder / "etc").symlink_to("/etc", target_is_directory=True)

    result = cli("upload", str(folder), "links/tiles", connection=azurite.connection_string)
    assert result.returncode == 0, result.stderr
    names = [b.name for b in service.get_container_client("links").list_blobs()]
    assert names == ["tiles/Forest/a.jpg"]
    assert result.stdout.startswith("Uploaded 1 files")
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped")]
    assert skipped == [f"skipped 2 symbolic links (pass --follow-symlinks to upload them): "
                       f"{folder / 'Forest' / 'passwd.jpg'}, {folder / 'etc'}"]

    followed = cli("upload", str(folder / "Forest"), "links/followed", "--follow-symlinks",
                   connection=azurite.connection_string)
    assert followed.returncode == 0, followed.stderr
    blob = service.get_blob_client("links", "followed/passwd.jpg")
    assert blob.download_blob().readall() == Path("/etc/passwd").read_bytes()
