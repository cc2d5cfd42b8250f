"""A lock per scoring run, so that two runs of the same input never write its chunks at once.

Two ``score`` runs of the same source, model and settings share a run id, so they write the same
Parquet partitions; Spark's dynamic partition overwrite then deletes and renames folders under
the other writer (``SparkFileNotFoundException``). Locally the lock is an OS file lock
(``filelock``): the kernel releases it when its process dies, so a killed run leaves no stale
lock. Lock files live in ``<predictions>/_run_locks/`` (Spark skips ``_`` folders when reading).

Predictions in Blob storage are not locked yet (a blob lease is the tool there): concurrent runs
of the same input against one container remain the operator's to avoid; a warning says so.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

from filelock import FileLock, Timeout

logger = logging.getLogger(__name__)

LOCK_FOLDER = "_run_locks"
# Long enough for another run's Spark job over one group of chunks; a run waiting longer fails
# with one line instead of hanging.
DEFAULT_TIMEOUT_S = 3600.0


def local_folder(filepath: str) -> str | None:
    """The local path of ``filepath`` (``file://`` or a plain path), else ``None`` (a URL)."""
    if filepath.startswith("file://"):
        return filepath[len("file://") :]
    return None if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", filepath) else filepath


@contextmanager
def run_lock(filepath: str, run_id: str, timeout: float = DEFAULT_TIMEOUT_S) -> Iterator[None]:
    """Hold the lock of run ``run_id`` of the predictions folder ``filepath`` while in the block."""
    folder = local_folder(filepath)
    if folder is None:
        logger.warning("Predictions at %s are not locked per run: do not score the same input "
                       "twice at once there", filepath.split("?")[0])  # fmt: skip
        yield
        return
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
