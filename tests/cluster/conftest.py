"""A Spark standalone cluster (master + two 1-core workers on 127.0.0.1) for this folder's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cluster.standalone import StandaloneCluster


@pytest.fixture(scope="session")
def standalone_cluster(tmp_path_factory) -> Iterator[StandaloneCluster]:
    cluster = StandaloneCluster.start(tmp_path_factory.mktemp("standalone"))
    pids = cluster.daemon_pids()
    yield cluster
    cluster.stop()
    left = cluster.processes_left(pids)
    assert not left, f"processes of the standalone cluster still running after stop: {left}"
