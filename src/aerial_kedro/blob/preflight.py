"""Before a run touches any dataset: can every Blob container the pipeline uses be reached?

One request per (account, container) with a fail-fast client, so a stopped Azurite, a missing
container or a wrong key is one line naming the datasets concerned, within seconds, before any
node runs. Without it, the first blob dataset of a run may be a JSON/ONNX one written through
adlfs, whose azure-storage client retries an unreachable endpoint for about 90 s (adlfs exposes
no retry setting).

Datasets are recognised from their resolved catalog config: ``abfs://``/``az://`` paths with
adlfs credentials (``connection_string`` or ``account_name`` + ``account_key``/``sas_token``), and
``wasb[s]://``/``abfs[s]://`` URLs with the credentials of ``BlobSparkDataset``. A dataset without
credentials (e.g. on the cluster's default account, whose key only core-site.xml holds) is skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import AzureError
from azure.storage.blob import BlobServiceClient, LinearRetry
from kedro.framework.hooks import hook_impl

from aerial_kedro.blob.client import (
    CONNECTION_TIMEOUT_SECONDS,
    RETRY_BACKOFF_SECONDS,
    RETRY_TOTAL,
    BlobError,
    blob_endpoint,
    explain,
    service_client,
)
from aerial_kedro.blob.urls import BlobUrl, BlobUrlError, redact_url

logger = logging.getLogger(__name__)
FSSPEC_PROTOCOLS = ("abfs://", "az://")


@dataclass(frozen=True)
class ContainerAccess:
    """How to reach one container: endpoint, container name and a credential (never printed)."""

    account_url: str
    container: str
    connection_string: str | None = field(default=None, repr=False)
    credential: Any = field(default=None, repr=False, compare=False, hash=False)

    def client(self) -> BlobServiceClient:
        if self.connection_string:
            return service_client(self.connection_string)
        retry = LinearRetry(backoff=RETRY_BACKOFF_SECONDS, random_jitter_range=0, retry_total=RETRY_TOTAL)
        return BlobServiceClient(self.account_url, credential=self.credential, retry_policy=retry,
                                 connection_timeout=CONNECTION_TIMEOUT_SECONDS)


def container_access(config: Mapping[str, Any]) -> ContainerAccess | None:
    """The container a dataset config points at, or None when it is not a checkable blob dataset."""
    filepath = str(config.get("filepath", ""))
    credentials = config.get("credentials")
    if not isinstance(credentials, Mapping) or not credentials:
        return None
    if filepath.startswith(FSSPEC_PROTOCOLS):
        return _fsspec_access(filepath, credentials)
    try:
        url = BlobUrl.parse(filepath)
    except BlobUrlError:
        return None
    return _spark_access(url, credentials)


def _fsspec_access(filepath: str, credentials: Mapping[str, Any]) -> ContainerAccess | None:
    container = filepath.split("://", 1)[1].split("/", 1)[0].split("@", 1)[0]
    if credentials.get("connection_string"):
        connection_string = str(credentials["connection_string"])
        return ContainerAccess(blob_endpoint(connection_string), container, connection_string=connection_string)
    account = credentials.get("account_name")
    secret = credentials.get("account_key") or credentials.get("sas_token")
    if not account or not secret:
        return None
    credential = {"account_name": account, "account_key": secret} if credentials.get("account_key") else secret
    return ContainerAccess(f"https://{account}.blob.core.windows.net", container, credential=credential)


def _spark_access(url: BlobUrl, credentials: Mapping[str, Any]) -> ContainerAccess | None:
    emulator = credentials.get("emulator_endpoint")
    account_url = f"{str(emulator).rstrip('/')}/{url.account}" if emulator else f"https://{url.account}.blob.core.windows.net"
    if credentials.get("account_key"):
        credential: Any = {"account_name": url.account, "account_key": credentials["account_key"]}
    elif credentials.get("sas_token"):
        credential = credentials["sas_token"]
    else:
        return None
    return ContainerAccess(account_url, url.container, credential=credential)


def resolved_configs(catalog: Any, names: Iterable[str]) -> dict[str, Mapping[str, Any]]:
    """Resolved config (credentials filled in) of every named catalog dataset."""
    resolver = catalog.config_resolver
    configs = {}
    for name in names:
        if name == "parameters" or name.startswith("params:"):
            continue
        config = resolver.config.get(name) or (resolver.resolve_pattern(name) if resolver.match_dataset_pattern(name) else None)
        if config:
            configs[name] = config
    return configs


def check_containers(configs: Mapping[str, Mapping[str, Any]]) -> list[ContainerAccess]:
    """One request per container; raise ``BlobError`` (one line, naming the datasets) on failure."""
    users: dict[ContainerAccess, list[str]] = {}
    for name, config in sorted(configs.items()):
        access = container_access(config)
        if access is not None:
            users.setdefault(access, []).append(name)
    for access, names in users.items():
        client = access.client().get_container_client(access.container)
        try:
            client.get_container_properties()
        except AzureError as error:
            code = getattr(error, "error_code", None)
            missing = getattr(code, "value", code) == "ContainerNotFound"
            hint = f"; create it: python -m aerial_kedro.blob mkcontainer {access.container}" if missing else ""
            raise BlobError(
                f"{explain(error, endpoint=f'{access.account_url}/{access.container}', container=access.container)}"
                f" (needed by {', '.join(names)}){hint}"
            ) from None
        logger.info("Blob container %s/%s reachable (%d datasets)", redact_url(access.account_url),
                    access.container, len(names))
    return list(users)


class BlobPreflightHooks:
    """Kedro hook: check every blob container of the pipeline before the first node runs."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        check_containers(resolved_configs(catalog, pipeline.datasets()))
