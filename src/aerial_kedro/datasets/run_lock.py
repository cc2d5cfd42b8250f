"""A lock per scoring run, so that two runs of the same input never write its chunks at once.

Two ``score`` runs of the same source, model and settings share a run id, so they write the same
Parquet partitions; Spark's dynamic partition overwrite then deletes and renames folders under
the other writer (``SparkFileNotFoundException``). The lock of run ``<run>`` is named
``<predictions>/_run_locks/<run>.lock`` (Spark skips ``_`` folders when reading):

* **Local folder**: an OS file lock (``filelock``). The kernel releases it when its process
  dies, so a killed run leaves no stale lock.
* **Azure Blob** (``wasb[s]://``, ``abfs[s]://``): a lease on that (empty) blob. The lease is
  finite (:data:`LEASE_SECONDS`) and a daemon thread renews it while the run holds it, then it
  is released on exit. A SIGKILLed run stops renewing, so its lease expires within
  ``LEASE_SECONDS`` and the next run takes it: no lock outlives its process by more than that.
  Credentials: the dataset's own ``credentials`` (:class:`BlobAccess`), else what the running
  Spark session already holds for that account (:mod:`aerial_kedro.blob.credentials`). Without
  any usable credential the run is not locked and a warning says so.

A run that waits longer than ``timeout`` fails with one line naming the run id and the holder.
No message holds a secret: URLs go through ``redact_url``.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError
from azure.storage.blob import BlobClient, BlobLeaseClient
from filelock import FileLock, Timeout

from aerial_kedro.blob.client import BlobError, explain, service_client
from aerial_kedro.blob.credentials import access_from_spark, blob_connection_string, has_credential
from aerial_kedro.blob.urls import SCHEMES, BlobUrl, BlobUrlError, redact_url
from aerial_kedro.datasets.blob_spark_dataset import BlobAccess

logger = logging.getLogger(__name__)

LOCK_FOLDER = "_run_locks"
# Long enough for another run's Spark job over one group of chunks; a run waiting longer fails
# with one line instead of hanging.
DEFAULT_TIMEOUT_S = 3600.0
# Azure allows finite leases of 15-60 s. 30 s: a killed run blocks the next one for at most
# that long, and three renewals per period survive a slow request or two.
LEASE_SECONDS = 30
POLL_SECONDS = 1.0
# Lease errors meaning another process holds the lease now (ours expired and was taken).
_LEASE_LOST = {
    "LeaseIdMismatchWithLeaseOperation",
    "LeaseNotPresentWithLeaseOperation",
    "LeaseLost",
}


def local_folder(filepath: str) -> str | None:
    """The local path of ``filepath`` (``file://`` or a plain path), else ``None`` (a URL)."""
    if filepath.startswith("file://"):
        return filepath[len("file://") :]
    return None if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", filepath) else filepath


def lock_blob_name(url: BlobUrl, run_id: str) -> str:
    """Name of run ``run_id``'s lock blob inside the container of the predictions ``url``."""
    return "/".join(part for part in (url.path, LOCK_FOLDER, f"{run_id}.lock") if part)


@contextmanager
def run_lock(
    filepath: str,
    run_id: str,
    timeout: float = DEFAULT_TIMEOUT_S,
    *,
    access: BlobAccess | None = None,
    lease_seconds: int = LEASE_SECONDS,
) -> Iterator[None]:
    """Hold the lock of run ``run_id`` of the predictions folder ``filepath`` while in the block.

    ``access`` is used for a blob ``filepath`` (default: the Spark session's credentials for it).
    Raises ``TimeoutError`` (one line) when another process holds it for over ``timeout`` s.
    """
    folder = local_folder(filepath)
    if folder is not None:
        with _file_lock(folder, run_id, timeout):
            yield
        return
    lock = blob_run_lock(filepath, run_id, access, lease_seconds)
    if lock is None:
        reason = ("no account key or SAS token for it: give the entry `credentials`"
                  if filepath.split("://", 1)[0] in SCHEMES
                  else "only local folders and Azure Blob are")  # fmt: skip
        logger.warning("Predictions at %s are not locked per run (%s): do not score the same "
                       "input twice at once there", redact_url(filepath), reason)  # fmt: skip
        yield
        return
    lock.acquire(timeout)
    try:
        yield
    except BaseException:
        lock.release()
        raise
    lock.release()
    lock.raise_if_lost()


@contextmanager
def _file_lock(folder: str, run_id: str, timeout: float) -> Iterator[None]:
    locks = os.path.join(folder, LOCK_FOLDER)
    os.makedirs(locks, exist_ok=True)
    lock = FileLock(os.path.join(locks, f"{run_id}.lock"))
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise TimeoutError(
            f"run {run_id} is being written by another process for over {timeout:.0f} s "
            f"(lock {lock.lock_file})"
        ) from None
    try:
        yield
    finally:
        lock.release()


def blob_run_lock(
    filepath: str,
    run_id: str,
    access: BlobAccess | None = None,
    lease_seconds: int = LEASE_SECONDS,
) -> BlobRunLock | None:
    """The lease lock of a blob ``filepath``; None for other URLs or when no credential is known."""
    if filepath.split("://", 1)[0] not in SCHEMES:
        return None
    try:
        url = BlobUrl.parse(filepath)
    except BlobUrlError as error:
        raise ValueError(str(error)) from None
    access = access if access is not None and has_credential(access) else access_from_spark(url)
    connection_string = blob_connection_string(url, access)
    if connection_string is None:
        return None
    client = service_client(connection_string).get_blob_client(
        url.container, lock_blob_name(url, run_id)
    )
    return BlobRunLock(client, run_id, lease_seconds=lease_seconds)


class BlobRunLock:
    """A finite lease on one lock blob, renewed by a daemon thread until :meth:`release`."""

    def __init__(
        self,
        blob: BlobClient,
        run_id: str,
        *,
        lease_seconds: int = LEASE_SECONDS,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        if not 15 <= lease_seconds <= 60:
            raise ValueError(f"lease_seconds={lease_seconds}: Azure leases last 15 to 60 s")
        self._blob = blob
        self._run_id = run_id
        self._lease_seconds = lease_seconds
        self._poll_seconds = poll_seconds
        self._lease = BlobLeaseClient(blob)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lost: str | None = None
        self.where = redact_url(f"{blob.url}")

    def acquire(self, timeout: float) -> None:
        """Take the lease, waiting up to ``timeout`` s for another holder; then keep renewing it."""
        deadline = time.monotonic() + timeout
        try:
            self._create_lock_blob()
            while not self._try_lease():
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"run {self._run_id} is being written by another process{self._holder()} "
                        f"for over {timeout:.0f} s (lock {self.where})"
                    )
                time.sleep(max(0.0, min(self._poll_seconds, deadline - time.monotonic())))
            self._blob.set_blob_metadata(_holder_metadata(), lease=self._lease)
        except AzureError as error:
            raise BlobError(self._explain(error)) from None
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._keep_renewing, name=f"run-lock-{self._run_id}", daemon=True
        )
        self._thread.start()

    def release(self) -> None:
        """Stop renewing and release the lease (if that fails, it expires on its own)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._lease_seconds)
            self._thread = None
        try:
            self._lease.release()
        except AzureError as error:
            logger.warning("Could not release the lock of run %s (it expires within %d s): %s",
                           self._run_id, self._lease_seconds, self._explain(error))  # fmt: skip

    def raise_if_lost(self) -> None:
        """Fail the run if another process took the lease while this one held it."""
        if self._lost:
            raise RuntimeError(
                f"run {self._run_id} lost its lock {self.where} while writing ({self._lost}): "
                "another run may have written the same chunks; score again to resume"
            )

    def _create_lock_blob(self) -> None:
        if self._blob.exists():
            return
        try:
            self._blob.upload_blob(b"", overwrite=False)
        except ResourceExistsError:
            pass  # another run created it meanwhile
        except HttpResponseError as error:
            if _code(error) != "LeaseIdMissing":  # created and leased meanwhile
                raise

    def _try_lease(self) -> bool:
        try:
            self._lease.acquire(lease_duration=self._lease_seconds)
        except HttpResponseError as error:
            if _code(error) == "LeaseAlreadyPresent":
                return False
            raise
        return True

    def _keep_renewing(self) -> None:
        while not self._stop.wait(self._lease_seconds / 3):
            try:
                self._lease.renew()
            except HttpResponseError as error:
                if _code(error) in _LEASE_LOST:
                    self._lost = f"lease {_code(error)}"
                    logger.error("Run %s lost its lock %s", self._run_id, self.where)
                    return
                logger.warning("Renewing the lock of run %s failed: %s", self._run_id,
                               self._explain(error))  # fmt: skip
            except AzureError as error:  # unreachable for a moment: retry at the next period
                logger.warning("Renewing the lock of run %s failed: %s", self._run_id,
                               self._explain(error))  # fmt: skip

    def _holder(self) -> str:
        """`` (pid 12 on host h since T)`` from the lock blob's metadata, or ``""``."""
        try:
            metadata = self._blob.get_blob_properties().metadata or {}
        except AzureError:
            return ""
        if not {"pid", "host", "since"} <= set(metadata):
            return ""
        return f" (pid {metadata['pid']} on host {metadata['host']} since {metadata['since']})"

    def _explain(self, error: Exception) -> str:
        endpoint = redact_url(self._blob.url.split(f"/{self._blob.container_name}/", 1)[0])
        return explain(error, endpoint=endpoint, container=self._blob.container_name)


def _holder_metadata() -> dict[str, str]:
    return {
        "host": socket.gethostname(),
        "pid": str(os.getpid()),
        "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _code(error: Exception) -> str | None:
    code = getattr(error, "error_code", None)
    return getattr(code, "value", code)
