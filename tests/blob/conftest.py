"""Fixtures for tests against a real Azurite: one server per test session, fresh containers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from azure.storage.blob import BlobServiceClient
from blob.azurite import HADOOP_AZURE_JARS, Azurite, require


@pytest.fixture(scope="session")
def azurite(tmp_path_factory) -> Iterator[Azurite]:
    server = Azurite.start(tmp_path_factory.mktemp("azurite"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def stopped_azurite(tmp_path_factory) -> Azurite:
    """An Azurite that ran and was stopped: its port now refuses connections."""
    server = Azurite.start(tmp_path_factory.mktemp("azurite-stopped"))
    server.stop()
    return server


@pytest.fixture(scope="session")
def blob_service(azurite) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(azurite.connection_string)


@pytest.fixture
def container_name() -> str:
    """A container name no other test uses (containers are never shared between tests)."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def blob_spark(spark):
    """The test session's SparkSession, which must have hadoop-azure (scripts/fetch_jars.sh)."""
    require(HADOOP_AZURE_JARS, "bash scripts/fetch_jars.sh")
    return spark
