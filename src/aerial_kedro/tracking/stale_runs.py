"""Closing MLflow runs left open by killed sessions.

Every run is tagged with the host and process that own it (``owner_tags``), so that the next
session start can close runs whose process died without ending them (SIGKILL, OOM killer):
``close_stale_runs``.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from pathlib import Path

from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)

OWNER_HOST_TAG = "aerial_kedro.owner_host"
OWNER_PID_TAG = "aerial_kedro.owner_pid"
OWNER_START_TAG = "aerial_kedro.owner_start"  # the PID's start time: PIDs are reused
CLOSED_TAG = "aerial_kedro.closed_stale"


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (state first), None when unknown (no /proc, no process)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_start_time(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from /proc), None when unknown.

    Together with the PID it names one process: a PID alone may belong to a newer process.
    """
    fields = _proc_stat(pid)
    return fields[19] if fields else None  # field 22 of proc(5)


def owner_tags(pid: int | None = None) -> dict[str, str]:
    """Tags naming the process that owns a run: host, PID and the PID's start time."""
    pid = os.getpid() if pid is None else pid
    return {OWNER_HOST_TAG: socket.gethostname(), OWNER_PID_TAG: str(pid),
            OWNER_START_TAG: process_start_time(pid) or ""}


def owner_is_gone(tags: Mapping[str, str]) -> bool:
    """True only when the run's owner is known to be dead: same host, and that PID (with that
    start time) no longer runs. Runs of other hosts or without owner tags are never judged."""
    if tags.get(OWNER_HOST_TAG) != socket.gethostname() or not tags.get(OWNER_PID_TAG, "").isdigit():
        return False
    pid = int(tags[OWNER_PID_TAG])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's
    fields = _proc_stat(pid)
    if fields is None:
        return False
    if fields[0] in ("Z", "X"):  # killed, not yet reaped by its parent
        return True
    return bool(tags.get(OWNER_START_TAG)) and fields[19] != tags[OWNER_START_TAG]


def close_stale_runs(client: MlflowClient, experiment_id: str) -> list[str]:
    """Mark KILLED the RUNNING runs of the experiment whose owner process is gone; their ids.

    A SIGKILLed or OOM-killed ``kedro run`` never ends its MLflow run, which then shows as running
    forever and is picked up by "latest run" queries. Runs of live processes (a concurrent run)
    and runs this host cannot judge are left as they are.
    """
    closed = []
    for run in client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'",
                                  max_results=1000):
        if owner_is_gone(run.data.tags):
            run_id = run.info.run_id
            client.set_tag(run_id, CLOSED_TAG, f"owner process {run.data.tags[OWNER_PID_TAG]} gone; "
                                               f"closed by process {os.getpid()}")
            client.set_terminated(run_id, RunStatus.to_string(RunStatus.KILLED))
            closed.append(run_id)
    if closed:
        logger.warning("Marked %d MLflow run(s) KILLED whose process died while running: %s",
                       len(closed), ", ".join(closed))
    return closed
