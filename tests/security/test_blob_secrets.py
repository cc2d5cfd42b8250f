"""Item 2: a SAS token never reaches stderr, logs or run parameters (real Azurite, real CLI).

A SAS token is a bearer credential carried in a URL's query string: the azure SDK's clients keep
it in ``client.url``, so any message built from that URL leaks ``sig=...`` into terminals, CI logs
and bug reports. These tests hand the CLI and the preflight a real SAS (signed with Azurite's
key) and read every line they print.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from azure.storage.blob import AccountSasPermissions, ResourceTypes, generate_account_sas
from blob.azurite import ACCOUNT, EMULATOR_KEY, WRONG_KEY, Azurite

from aerial_kedro.blob.client import BlobError
from aerial_kedro.blob.preflight import check_containers
from aerial_kedro.blob.urls import redact_url


@pytest.fixture(scope="module")
def azurite(tmp_path_factory):
    server = Azurite.start(tmp_path_factory.mktemp("azurite-sas"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stopped_azurite(tmp_path_factory) -> Azurite:
    server = Azurite.start(tmp_path_factory.mktemp("azurite-sas-stopped"))
    server.stop()
    return server


def sas_token(key: str = EMULATOR_KEY) -> str:
    return generate_account_sas(
        ACCOUNT, key,
        resource_types=ResourceTypes(service=True, container=True, object=True),
        permission=AccountSasPermissions(read=True, write=True, list=True, create=True),
        expiry=datetime.now(timezone.utc) + timedelta(hours=1),
    )


def sas_connection_string(port: int, token: str) -> str:
    return f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};SharedAccessSignature={token}"


def signature(token: str) -> str:
    return dict(part.split("=", 1) for part in token.split("&"))["sig"]


def cli(*args: str, connection: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "AZURE_STORAGE_CONNECTION_STRING": connection}
    return subprocess.run([sys.executable, "-m", "aerial_kedro.blob", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def assert_no_sas(text: str, token: str) -> None:
    text = re.sub(r"sig=\[?REDACTED\]?", "", text)  # already redacted (by us, the azure SDK or mlflow)
    assert "sig=" not in text and signature(token) not in text, text
    assert token not in text


@pytest.mark.parametrize("command", ["ls", "download", "upload"])
def test_unreachable_endpoint_error_shows_no_sas(stopped_azurite, tmp_path, command):
    token = sas_token()
    args = {"ls": ("ls", "tiles/x"), "download": ("download", "tiles/x", str(tmp_path / "d")),
            "upload": ("upload", str(tmp_path), "tiles/x", "--no-create-container")}[command]
    result = cli(*args, connection=sas_connection_string(stopped_azurite.port, token))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    # Still names the culprit: the endpoint and container, without the token.
    assert lines[0].startswith(f"error: Azure Blob endpoint http://127.0.0.1:{stopped_azurite.port}/{ACCOUNT}/tiles ")
    assert_no_sas(result.stderr + result.stdout, token)


def test_rejected_sas_error_shows_no_sas(azurite, tmp_path):
    token = sas_token(WRONG_KEY)  # well-formed, signed with the wrong key: HTTP 403
    result = cli("ls", "tiles", connection=sas_connection_string(azurite.port, token))
    assert result.returncode == 1 and "rejected the credentials" in result.stderr, result.stderr
    assert_no_sas(result.stderr + result.stdout, token)


def test_a_valid_sas_works_and_is_not_printed(azurite, sample_tiles, tmp_path):
    token = sas_token()
    connection = sas_connection_string(azurite.port, token)
    assert cli("mkcontainer", "sas-ok", connection=connection).returncode == 0
    up = cli("upload", str(sample_tiles / "Forest"), "sas-ok/forest", connection=connection)
    assert up.returncode == 0 and up.stdout.startswith("Uploaded 30 files"), up.stderr
    down = cli("download", "sas-ok/forest", str(tmp_path / "copy"), connection=connection)
    assert down.returncode == 0 and len(list((tmp_path / "copy").iterdir())) == 30, down.stderr
    for result in (up, down):
        assert_no_sas(result.stdout + result.stderr, token)


def test_preflight_messages_and_logs_show_no_sas(azurite, stopped_azurite, caplog):
    token = sas_token()
    live = {"tiles": {"filepath": "abfs://sas-pre/x.json",
                      "credentials": {"connection_string": sas_connection_string(azurite.port, token)}}}
    cli("mkcontainer", "sas-pre", connection=sas_connection_string(azurite.port, token))
    with caplog.at_level(logging.DEBUG):  # urllib3 logs every request URL at DEBUG
        check_containers(live)
    dead = {"tiles": {"filepath": "abfs://sas-pre/x.json",
                      "credentials": {"connection_string": sas_connection_string(stopped_azurite.port, token)}}}
    with pytest.raises(BlobError) as caught:
        check_containers(dead)
    assert "is not reachable" in str(caught.value)
    assert_no_sas(str(caught.value) + caplog.text, token)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://acct.blob.core.windows.net/c/scene.tif?sv=2022-11-02&sp=r&sig=AbC%2Fd%3D",
         "https://acct.blob.core.windows.net/c/scene.tif"),
        ("/vsicurl/https://user:pw@host.example/x.tif?token=1#frag", "/vsicurl/https://host.example/x.tif"),
        ("wasbs://tiles@acct.blob.core.windows.net/eurosat", "wasbs://tiles@acct.blob.core.windows.net/eurosat"),
        ("abfss://tiles:pw@acct.dfs.core.windows.net/a", "abfss://tiles@acct.dfs.core.windows.net/a"),
        ("../shared/data/rasters/a?b.tif", "../shared/data/rasters/a?b.tif"),  # a local path: untouched
        ("/data/01_raw/eurosat", "/data/01_raw/eurosat"),
        ("endpoint http://127.0.0.1:1/c?sv=1&sig=abc is down", "endpoint http://127.0.0.1:1/c is down"),
        ("BlobEndpoint=http://h/a;AccountKey=c2VjcmV0;", "BlobEndpoint=http://h/a;AccountKey=REDACTED;"),
        ("sv=2022-11-02&sig=abc", "sv=2022-11-02&sig=REDACTED"),  # a bare SAS token
    ],
)
def test_redact_url(text, expected):
    assert redact_url(text) == expected
    assert redact_url(expected) == expected  # idempotent
