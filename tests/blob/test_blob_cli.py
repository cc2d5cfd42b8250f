"""`python -m aerial_kedro.blob` against a real Azurite: staging, listing, downloading, failures."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from blob.azurite import WRONG_KEY, connection_string

from aerial_kedro.blob.__main__ import main
from aerial_kedro.blob.client import CONNECTION_STRING_ENV


def cli(*args: str, env_connection: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, CONNECTION_STRING_ENV: env_connection} if env_connection else dict(os.environ)
    return subprocess.run([sys.executable, "-m", "aerial_kedro.blob", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_upload_a_tile_folder_then_list_and_download_it(azurite, sample_tiles, container_name, tmp_path, capsys):
    result = cli("upload", str(sample_tiles), f"{container_name}/eurosat-sample", "--workers", "8",
                 env_connection=azurite.connection_string)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Uploaded 300 files, ") and result.stdout.rstrip().endswith(f"to {container_name}/eurosat-sample")
    progress = result.stderr.splitlines()  # not a TTY: one line per tenth
    assert len(progress) == 10 and progress[-1].startswith("uploaded 300/300 files")

    assert main(["ls", f"{container_name}/eurosat-sample/Forest", "--connection-string", azurite.connection_string]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert len(listing) == 30 and listing[0].split()[1].startswith("eurosat-sample/Forest/Forest_")

    target = tmp_path / "copy"
    assert main(["download", f"{container_name}/eurosat-sample", str(target), "--connection-string", azurite.connection_string]) == 0
    local = sorted(p.relative_to(sample_tiles) for p in sample_tiles.rglob("*") if p.is_file())
    assert sorted(p.relative_to(target) for p in target.rglob("*") if p.is_file()) == local
    assert all((target / rel).read_bytes() == (sample_tiles / rel).read_bytes() for rel in local)


def test_upload_a_single_raster(azurite, blob_service, container_name, sample_tiles):
    raster = sample_tiles.parent / "rasters" / "czech_s2_tci_20220319.tif"
    assert main(["upload", str(raster), f"{container_name}/rasters", "--connection-string", azurite.connection_string]) == 0
    blob = blob_service.get_blob_client(container_name, "rasters/czech_s2_tci_20220319.tif")
    properties = blob.get_blob_properties()
    assert properties.size == raster.stat().st_size and properties.content_settings.content_type == "image/tiff"
    assert blob.download_blob().readall() == raster.read_bytes()


def failure(*args: str) -> tuple[str, float]:
    started = time.perf_counter()
    result = cli(*args)
    assert result.returncode == 1, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0], time.perf_counter() - started


def test_stopped_azurite_fails_fast(stopped_azurite, sample_tiles, container_name):
    line, seconds = failure("upload", str(sample_tiles), f"{container_name}/x", "--connection-string", stopped_azurite.connection_string)
    assert line.startswith(f"error: Azure Blob endpoint http://127.0.0.1:{stopped_azurite.port}/devstoreaccount1/{container_name} "
                           "is not reachable (is Azurite / the storage account up?): ")
    assert "Connection refused" in line and seconds < 15


def test_missing_container_is_named(azurite, container_name, tmp_path):
    expected = f"error: Container '{container_name}' does not exist at http://127.0.0.1:{azurite.port}/devstoreaccount1/{container_name}"
    assert failure("ls", f"{container_name}/eurosat", "--connection-string", azurite.connection_string)[0] == expected
    assert failure("download", container_name, str(tmp_path), "--connection-string", azurite.connection_string)[0] == expected
    assert failure("upload", str(tmp_path), container_name, "--no-create-container",
                   "--connection-string", azurite.connection_string)[0] == expected


def test_wrong_key_is_named(azurite, blob_service, container_name):
    blob_service.create_container(container_name)
    line, seconds = failure("ls", container_name, "--connection-string", connection_string(azurite.port, WRONG_KEY))
    assert line == (f"error: Azure Blob endpoint http://127.0.0.1:{azurite.port}/devstoreaccount1/{container_name} "
                    "rejected the credentials (wrong account key or SAS token?): AuthorizationFailure")  # Azurite's code
    assert seconds < 15


def test_no_connection_string_and_bad_target_are_named(monkeypatch, capsys):
    monkeypatch.delenv(CONNECTION_STRING_ENV, raising=False)
    assert main(["ls", "raw"]) == 1
    assert capsys.readouterr().err == f"error: No connection string: pass --connection-string or set {CONNECTION_STRING_ENV}\n"
    with pytest.raises(SystemExit):
        main(["ls", "Raw/x"])
    assert "'Raw' is not a container name" in capsys.readouterr().err
