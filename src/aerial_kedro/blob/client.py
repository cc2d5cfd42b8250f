"""azure-storage-blob clients that fail fast, and one-line explanations of their errors.

The SDK's default retry policy backs off for about 90 s before it gives up on an endpoint that
refuses connections; a stopped Azurite or a wrong endpoint should instead be reported within
seconds, so every client built here uses a short linear retry and a connection timeout.
"""

from __future__ import annotations

import logging
import os

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)
from azure.core.utils import parse_connection_string
from azure.storage.blob import BlobServiceClient, LinearRetry

from aerial_kedro.blob.urls import redact_url

CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"
RETRY_TOTAL = 2
RETRY_BACKOFF_SECONDS = 1  # whole seconds: LinearRetry takes an int backoff
CONNECTION_TIMEOUT_SECONDS = 10
# Loggers that write request URLs as they are: urllib3 logs "GET /c?...&sig=... HTTP/1.1" at DEBUG.
URL_LOGGERS = ("urllib3.connectionpool", "azure.core.pipeline.policies.http_logging_policy")


class RedactingFilter(logging.Filter):
    """Rewrites a log record's message through ``redact_url`` (a SAS token rides in URLs)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_url(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


for _name in URL_LOGGERS:
    if not any(isinstance(f, RedactingFilter) for f in logging.getLogger(_name).filters):
        logging.getLogger(_name).addFilter(RedactingFilter())


class BlobError(RuntimeError):
    """A blob operation that cannot succeed; ``str()`` is one line naming the culprit."""


def connection_string_from(value: str | None) -> str:
    """The explicit connection string, else ``$AZURE_STORAGE_CONNECTION_STRING``."""
    connection_string = value or os.environ.get(CONNECTION_STRING_ENV)
    if not connection_string:
        raise BlobError(f"No connection string: pass --connection-string or set {CONNECTION_STRING_ENV}")
    return connection_string


def blob_endpoint(connection_string: str) -> str:
    """The Blob service URL a connection string points at (without credentials)."""
    try:
        parts = parse_connection_string(connection_string, case_sensitive_keys=False)
    except ValueError as error:
        raise BlobError(f"Malformed connection string: {error}") from None
    if "blobendpoint" in parts:
        return parts["blobendpoint"].rstrip("/")
    account = parts.get("accountname", "?")
    protocol = parts.get("defaultendpointsprotocol", "https")
    suffix = parts.get("endpointsuffix", "core.windows.net")
    return f"{protocol}://{account}.blob.{suffix}"


def service_client(connection_string: str) -> BlobServiceClient:
    """A ``BlobServiceClient`` with short retries (a dead endpoint fails in a few seconds)."""
    retry = LinearRetry(backoff=RETRY_BACKOFF_SECONDS, random_jitter_range=0, retry_total=RETRY_TOTAL)
    try:
        return BlobServiceClient.from_connection_string(
            connection_string, retry_policy=retry, connection_timeout=CONNECTION_TIMEOUT_SECONDS
        )
    except ValueError as error:
        raise BlobError(f"Malformed connection string: {error}") from None


def explain(error: Exception, *, endpoint: str, container: str | None = None) -> str:
    """One line for the three failures a user causes: endpoint down, container missing, bad key.

    The line never holds a secret: a SAS client's ``url`` carries the token in its query string.
    """
    return redact_url(_explain(error, endpoint=endpoint, container=container))


def _explain(error: Exception, *, endpoint: str, container: str | None) -> str:
    code = getattr(error, "error_code", None)
    code = getattr(code, "value", code)  # StorageErrorCode enum -> its wire name
    if isinstance(error, ServiceRequestError):
        return f"Azure Blob endpoint {endpoint} is not reachable (is Azurite / the storage account up?): {_first_line(error)}"
    if code == "ContainerNotFound" or (isinstance(error, ResourceNotFoundError) and container and code is None):
        return f"Container '{container}' does not exist at {endpoint}"
    if isinstance(error, ClientAuthenticationError) or getattr(error, "status_code", None) == 403:
        return f"Azure Blob endpoint {endpoint} rejected the credentials (wrong account key or SAS token?): {code or _first_line(error)}"
    if isinstance(error, HttpResponseError):
        return f"Azure Blob request to {endpoint} failed: {code or _first_line(error)}"
    return f"{type(error).__name__}: {_first_line(error)}"


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
