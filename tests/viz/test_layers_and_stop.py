"""kedro-viz's own layer order of every registered pipeline, and `make viz` stopped by its PID.

The layer test calls the code in kedro-viz that turns the catalog's ``kedro-viz: layer`` values
into one order (``kedro_viz.services.layers.sort_layers``, via the DataAccessManager a `kedro viz
run` fills, with its namespace nodes): a cycle there makes kedro-viz drop every layer. The stop test starts
`make viz` (and scripts/viz.sh alone), waits for the port, signals the started PID only and asserts
that the port is free within seconds: kedro-viz serves from a child process that outlives its parent.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, free_port, make_project_copy

# The data-engineering convention (the data/0N_ folders).
CONVENTION = ("raw", "intermediate", "primary", "feature", "model_input", "models", "model_output",
              "reporting")  # fmt: skip
KEDRO = Path(sys.executable).with_name("kedro")


@pytest.fixture(scope="module")
def viz_data(tmp_path_factory):
    """(DataAccessManager filled as by `kedro viz run`, registered pipelines) of a project copy."""
    from kedro_viz.data_access.managers import DataAccessManager
    from kedro_viz.integrations.kedro import data_loader
    from kedro_viz.server import populate_data

    project = make_project_copy(tmp_path_factory.mktemp("layers") / "project")
    catalog, pipelines, extras = data_loader.load_data(project)
    manager = DataAccessManager()
    populate_data(manager, catalog, pipelines, extras)
    for pid in pipelines:  # as the API does before it sorts: a namespace becomes a node whose
        # inputs all feed its outputs (the "feature, intermediate, feature" came from there)
        manager.create_modular_pipelines_tree_for_registered_pipeline(pid)
    return manager, pipelines


def test_kedro_viz_orders_the_layers_of_every_pipeline_without_a_cycle(viz_data, caplog):
    manager, pipelines = viz_data
    with caplog.at_level(logging.WARNING, logger="kedro_viz.services.layers"):
        orders = {pid: manager.get_sorted_layers_for_registered_pipeline(pid) for pid in pipelines}
    assert "circular dependency" not in caplog.text
    for pid, order in orders.items():
        assert order, f"kedro-viz shows no layers for pipeline {pid!r}"
        assert set(order) <= set(CONVENTION), pid
    # Where the layers are connected (the whole project), kedro-viz's order is the convention's.
    default = orders["__default__"]
    assert default == [layer for layer in CONVENTION if layer in default]
    assert {"raw", "intermediate", "feature", "models", "model_output", "reporting"} <= set(default)


def test_every_dataset_feeds_only_datasets_of_its_layer_or_a_later_one(viz_data):
    """The nearest layered datasets downstream of each layered dataset, along every pipeline."""
    manager, pipelines = viz_data
    nodes = manager.nodes.as_dict()

    def layer(node_id: str) -> str | None:
        return getattr(nodes[node_id], "layer", None)

    backwards = set()
    for pid in pipelines:
        dependencies = manager.get_node_dependencies_for_registered_pipeline(pid)
        for node_id in sorted(dependencies):
            if layer(node_id) is None:
                continue
            stack, seen = list(dependencies[node_id]), set()
            while stack:
                child = stack.pop()
                if child in seen:
                    continue
                seen.add(child)
                if layer(child) is None:
                    stack.extend(dependencies.get(child, ()))
                elif CONVENTION.index(layer(child)) < CONVENTION.index(layer(node_id)):
                    backwards.add(
                        f"{nodes[node_id].name} ({layer(node_id)}) -> "
                        f"{nodes[child].name} ({layer(child)})"
                    )
    assert not backwards, "layers against the DAG:\n" + "\n".join(sorted(backwards))


# --------------------------------------------------------------------------- make viz, stopped


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(condition, timeout_s: float, process: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        if process is not None and process.poll() is not None:
            return condition()
        time.sleep(0.2)
    return condition()


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def make_command(port: int) -> list[str]:
    # The project's Makefile, run in the copy; BIN = this venv, the set-up stamp taken as done.
    return ["make", "-s", "-o", ".venv/.installed",
            f"BIN={KEDRO.parent}", f"VIZ_PORT={port}", "viz"]  # fmt: skip


def script_command(port: int) -> list[str]:
    return ["bash", "scripts/viz.sh", "--host", "127.0.0.1",
            "--port", str(port), "--no-browser"]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    ("how", "sig"),
    [("make", signal.SIGTERM), ("script", signal.SIGTERM), ("script", signal.SIGINT)],
)
def test_stopping_the_started_pid_frees_the_port(tmp_path, how, sig):
    if how == "make" and shutil.which("make") is None:
        pytest.skip("no make")
    project = make_project_copy(tmp_path / "project")
    shutil.copy(PROJECT_ROOT / "Makefile", project / "Makefile")
    (project / "scripts").mkdir()
    shutil.copy(PROJECT_ROOT / "scripts" / "viz.sh", project / "scripts" / "viz.sh")
    port = free_port()
    command = make_command(port) if how == "make" else script_command(port)
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "KEDRO": str(KEDRO)}
    log_path = tmp_path / "viz.log"
    with open(log_path, "wb") as log:
        # Own session: the test can reap whatever is left without touching its own group.
        started = subprocess.Popen(command, cwd=project, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        assert wait_until(lambda: port_open(port), 240, started), (
            f"kedro viz did not listen on {port}:\n" + log_path.read_text(errors="replace")[-3000:]
        )
        os.kill(started.pid, sig)  # the started PID only, as a user's `kill <pid>` does
        freed = wait_until(lambda: not port_open(port), 8)
        started.wait(timeout=10)
        assert freed, f"port {port} still served {how} got {sig.name}: a server child was left"
        assert wait_until(lambda: not group_alive(started.pid), 5), "processes left in the group"
    finally:
        if group_alive(started.pid):
            os.killpg(started.pid, signal.SIGKILL)
