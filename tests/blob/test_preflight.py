"""The pre-run container check on the real `azurite` catalog: reachable, stopped, missing, bad key."""

from __future__ import annotations

import copy
import time

import pytest
from blob.azurite import EMULATOR_KEY, WRONG_KEY

from aerial_kedro.blob.client import BlobError
from aerial_kedro.blob.config_check import load_environment
from aerial_kedro.blob.preflight import check_containers, resolved_configs


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from conftest import make_project_copy

    return make_project_copy(tmp_path_factory.mktemp("preflight") / "project")


def train_configs(project, port: int, monkeypatch) -> dict:
    from kedro.framework.project import pipelines, settings

    monkeypatch.setenv("AZURITE_BLOB_PORT", str(port))
    config = load_environment(project, "azurite")
    catalog = settings.DATA_CATALOG_CLASS.from_config(config["catalog"], config["credentials"])
    return resolved_configs(catalog, pipelines["train"].datasets())


def failure(configs) -> tuple[str, float]:
    started = time.perf_counter()
    with pytest.raises(BlobError) as caught:
        check_containers(configs)
    return str(caught.value), time.perf_counter() - started


def test_every_container_of_train_is_checked(project, azurite, blob_service, monkeypatch):
    for name in ("raw", "aerial"):
        if not blob_service.get_container_client(name).exists():
            blob_service.create_container(name)
    checked = check_containers(train_configs(project, azurite.port, monkeypatch))
    assert {access.container for access in checked} == {"raw", "aerial"}
    assert {access.account_url for access in checked} == {f"http://127.0.0.1:{azurite.port}/devstoreaccount1"}


def test_stopped_azurite(project, stopped_azurite, monkeypatch):
    message, seconds = failure(train_configs(project, stopped_azurite.port, monkeypatch))
    assert message.startswith(f"Azure Blob endpoint http://127.0.0.1:{stopped_azurite.port}/devstoreaccount1/")
    assert "is not reachable (is Azurite / the storage account up?)" in message and "(needed by " in message
    assert "\n" not in message and seconds < 15


def test_missing_output_container(project, tmp_path, monkeypatch):
    from blob.azurite import Azurite

    server = Azurite.start(tmp_path / "empty-azurite")  # no container at all
    try:
        message, _ = failure(train_configs(project, server.port, monkeypatch))
    finally:
        server.stop()
    assert message.startswith("Container '")
    assert "; create it: python -m aerial_kedro.blob mkcontainer " in message and "(needed by " in message


def test_wrong_key(project, azurite, monkeypatch):
    configs = copy.deepcopy(train_configs(project, azurite.port, monkeypatch))
    for config in configs.values():
        credentials = config.get("credentials") or {}
        for key in ("account_key", "connection_string"):
            if key in credentials:
                credentials[key] = credentials[key].replace(EMULATOR_KEY, WRONG_KEY)
    message, seconds = failure(configs)
    assert "rejected the credentials (wrong account key or SAS token?)" in message and seconds < 15
