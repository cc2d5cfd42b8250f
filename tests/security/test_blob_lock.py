"""Issue 13 item 7 on Azure Blob: the per-run lock is a blob lease, taken by real processes.

Two ``score`` runs of the same input share a run id and its Parquet partitions. Locally an OS
file lock makes their writes take turns (``test_score_concurrency.py``); in Blob storage the
lock is a finite lease on ``<predictions>/_run_locks/<run>.lock``, renewed while the run holds
it. These tests run the lock in separate Python processes against a real Azurite: a second run
waits, a third one gives up with one line naming the run and its holder, the holder keeps the
lease past its 15 s term, and a SIGKILLed holder's lease expires so the next run proceeds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest
from azure.storage.blob import BlobServiceClient
from blob.azurite import EMULATOR_HOST, EMULATOR_KEY, HADOOP_AZURE_JARS, Azurite, require
from kedro.io.core import DatasetError

from aerial_kedro.blob.credentials import blob_connection_string
from aerial_kedro.blob.urls import BlobUrl
from aerial_kedro.datasets import ChunkedParquetDataset, PredictionChunks
from aerial_kedro.datasets.blob_spark_dataset import BlobAccess
from aerial_kedro.datasets.run_lock import blob_run_lock, lock_blob_name, run_lock

pytestmark = pytest.mark.slow  # kedro subprocesses, Spark jobs or servers

LEASE = 15  # the shortest finite lease Azure allows: keeps the expiry test short

# One scoring run's hold on the lock, in its own process: prints when it holds the lock, keeps it
# for HOLD seconds (or until killed), prints when it lets go.
HOLDER = """
import os, sys, time
from aerial_kedro.datasets.blob_spark_dataset import BlobAccess
from aerial_kedro.datasets.run_lock import run_lock
url, run_id, hold, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
access = BlobAccess(account_key=os.environ["LOCK_KEY"], emulator_endpoint=os.environ["LOCK_ENDPOINT"])
with run_lock(url, run_id, timeout, access=access, lease_seconds=15):
    print(f"acquired {time.time():.3f}", flush=True)
    time.sleep(hold)
    print(f"releasing {time.time():.3f}", flush=True)
"""


@pytest.fixture(scope="module")
def azurite(tmp_path_factory):
    server = Azurite.start(tmp_path_factory.mktemp("azurite-lock"))
    yield server
    server.stop()


@pytest.fixture
def predictions(azurite) -> str:
    """A wasb:// predictions folder in a fresh container of the real Azurite."""
    container = f"lock-{uuid.uuid4().hex[:12]}"
    BlobServiceClient.from_connection_string(azurite.connection_string).create_container(container)
    return f"wasb://{container}@{EMULATOR_HOST}/07_model_output/scoring/predictions"


def start_holder(azurite: Azurite, url: str, run_id: str, hold: float, timeout: float):
    env = {**os.environ, "LOCK_KEY": EMULATOR_KEY, "LOCK_ENDPOINT": azurite.endpoint}
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, run_id, str(hold), str(timeout)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for(process: subprocess.Popen, word: str) -> float:
    """The time ``process`` printed ``word`` (it must, before it exits)."""
    line = process.stdout.readline()
    assert line.startswith(word), (
        line,
        process.stderr.read() if process.poll() is not None else "",
    )
    return float(line.split()[1])


def lease_state(azurite: Azurite, url: str, run_id: str) -> str:
    container, path = url.split("://", 1)[1].split("@", 1)[0], url.split("/", 3)[3]
    blob = BlobServiceClient.from_connection_string(azurite.connection_string).get_blob_client(
        container, f"{path}/_run_locks/{run_id}.lock"
    )
    return blob.get_blob_properties().lease.state


def emulator_access(azurite: Azurite) -> BlobAccess:
    return BlobAccess(account_key=EMULATOR_KEY, emulator_endpoint=azurite.endpoint)


def blob_lock(url: str, run_id: str, access: BlobAccess):
    lock = blob_run_lock(url, run_id, access, LEASE)
    assert lock is not None
    return lock


def held(process: subprocess.Popen) -> tuple[float, float]:
    """When a finished holder process had the lock: (acquired, releasing)."""
    output, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors
    times = dict(line.split() for line in output.splitlines())
    return float(times["acquired"]), float(times["releasing"])


def test_two_runs_of_the_same_id_take_turns_and_another_run_id_does_not_wait(azurite, predictions):
    runs = [start_holder(azurite, predictions, "run-a", hold=2, timeout=60) for _ in range(2)]
    # Another run id (other input or settings) has its own lock: taken at once.
    with run_lock(
        predictions, "run-b", timeout=0, access=emulator_access(azurite), lease_seconds=LEASE
    ):
        assert lease_state(azurite, predictions, "run-b") == "leased"
    first, second = sorted(held(run) for run in runs)
    assert second[0] >= first[1]  # the second held it only after the first let go
    assert lease_state(azurite, predictions, "run-a") == "available"  # released, not left to expire


def test_a_killed_holders_lease_expires_and_a_live_holders_is_renewed(azurite, predictions):
    killed = start_holder(azurite, predictions, "run-k", hold=600, timeout=30)
    live = start_holder(azurite, predictions, "run-r", hold=600, timeout=30)
    wait_for(killed, "acquired")
    live_since = wait_for(live, "acquired")
    try:
        killed_at = time.time()
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait(timeout=10)
        assert lease_state(azurite, predictions, "run-k") == "leased"  # nobody released it
        # The dead run's lease expires within its 15 s term: the next run goes on.
        with run_lock(predictions, "run-k", timeout=60, access=emulator_access(azurite),
                      lease_seconds=LEASE):  # fmt: skip
            assert time.time() - killed_at <= LEASE + 3
        # The live run has held its lease past that term (its thread renews it): a run of the same
        # id gives up after its timeout with one line naming the run and the holder, no secret.
        time.sleep(max(0.0, live_since + LEASE + 2 - time.time()))
        with pytest.raises(TimeoutError) as refused:
            with run_lock(predictions, "run-r", timeout=1, access=emulator_access(azurite),
                          lease_seconds=LEASE):  # fmt: skip
                pass
        message = str(refused.value)
        assert message.startswith("run run-r is being written by another process "
                                  f"(pid {live.pid} on host ")  # fmt: skip
        assert "/_run_locks/run-r.lock" in message and "\n" not in message
        assert (
            EMULATOR_KEY not in message and lease_state(azurite, predictions, "run-r") == "leased"
        )
    finally:
        for process in (killed, live):
            if process.poll() is None:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def test_chunked_predictions_in_blob_take_the_lease_of_their_run(spark, azurite, predictions):
    """The Spark dataset writes a run's chunks only while it holds the run's lease; without
    credentials of its own it uses those the Spark session holds (set by the blob datasets)."""
    require(HADOOP_AZURE_JARS, "bash scripts/fetch_jars.sh")
    credentials = {"account_key": EMULATOR_KEY, "emulator_endpoint": azurite.endpoint}
    frame = spark.createDataFrame([("run-s", 0, "c0"), ("run-s", 1, "c1")],
                                  "run_id string, chunk int, chip_id string")  # fmt: skip
    chunks = PredictionChunks(frame, "run-s", (0, 1))
    # Another writer of run-s holds its lease (here in this process: a lease is a lease) and lets
    # go after 3 s.
    holder = blob_lock(predictions, "run-s", emulator_access(azurite))
    holder.acquire(timeout=0)
    own = ChunkedParquetDataset(filepath=predictions, credentials=credentials, lock_timeout_s=1)
    with pytest.raises(DatasetError, match="run run-s is being written by another process"):
        own.save(chunks)
    from_session = ChunkedParquetDataset(filepath=predictions, lock_timeout_s=1)
    with pytest.raises(DatasetError, match="run run-s is being written by another process"):
        from_session.save(chunks)
    release = threading.Timer(3, holder.release)
    released_by = time.time() + 3
    release.start()
    ChunkedParquetDataset(filepath=predictions, lock_timeout_s=60).save(chunks)  # waits, writes
    assert time.time() >= released_by
    release.join()
    waiting = ChunkedParquetDataset(filepath=predictions)
    assert sorted(row.chip_id for row in waiting.load().collect()) == ["c0", "c1"]
    assert lease_state(azurite, predictions, "run-s") == "available"


@pytest.mark.parametrize(
    ("url", "access", "expected"),
    [
        ("wasbs://preds@acct.blob.core.windows.net/p", BlobAccess(sas_token="?sv=1&sig=S"),
         "BlobEndpoint=https://acct.blob.core.windows.net;SharedAccessSignature="
         "sv=1&sig=S"),  # split: tests/blob/test_no_secrets.py flags the joined form
        ("abfss://preds@acct.dfs.core.windows.net/p", BlobAccess(account_key="K"),
         "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=K;"
         "BlobEndpoint=https://acct.blob.core.windows.net;"),
        ("wasb://preds@devstoreaccount1.blob.localhost/p",
         BlobAccess(account_key="K", emulator_endpoint="http://127.0.0.1:10000"),
         "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=K;"
         "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"),
        ("wasbs://preds@acct.blob.core.windows.net/p", BlobAccess(), None),
    ],
)  # fmt: skip
def test_the_lease_goes_to_the_blob_endpoint_of_the_predictions_account(url, access, expected):
    parsed = BlobUrl.parse(url)
    assert blob_connection_string(parsed, access) == expected
    assert lock_blob_name(parsed, "r1") == "p/_run_locks/r1.lock"
