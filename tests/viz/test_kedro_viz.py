"""`kedro viz run` shows every registered pipeline, its namespaces and all its nodes, in a real browser.

Needs Debian's Chromium at /usr/bin/chromium (`apt-get install -y chromium`); playwright drives it and
never downloads a browser. Set UPDATE_DOCS_IMAGES=1 to refresh docs/images/kedro_viz.png.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT, free_port, make_project_copy

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
DOCS_SCREENSHOT = PROJECT_ROOT / "docs" / "images" / "kedro_viz.png"
# Hide kedro-viz's first-visit feature tour so that it does not cover the graph.
NO_FEATURE_TOUR = (
    "if (!localStorage.getItem('KedroViz'))"
    " localStorage.setItem('KedroViz', JSON.stringify({showFeatureHints: false}));"
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="no /usr/bin/chromium: apt-get install -y chromium"),
]


def wait_for_json(url: str, server: subprocess.Popen, timeout_s: float = 180) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"kedro viz exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return json.load(response)
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"kedro viz did not answer {url} within {timeout_s:.0f} s")


def stop_process_group(process: subprocess.Popen) -> None:
    """SIGTERM the server's process group (kedro viz serves from a child process), then SIGKILL."""
    for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def viz_server(tmp_path_factory) -> Iterator[tuple[str, dict]]:
    """(base URL, /api/main JSON) of `kedro viz run` in a throw-away copy of the project."""
    root = tmp_path_factory.mktemp("viz")
    project = make_project_copy(root / "project")
    port = free_port()
    kedro = Path(sys.executable).with_name("kedro")
    command = [str(kedro), "viz", "run", "--host", "127.0.0.1", "--port", str(port), "--no-browser"]
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    with open(root / "viz.log", "wb") as log:
        server = subprocess.Popen(command, cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)  # own process group: stopped as a whole
    base = f"http://127.0.0.1:{port}"
    try:
        api = wait_for_json(f"{base}/api/main", server)
        yield base, api
    except Exception:
        print((root / "viz.log").read_text(errors="replace")[-3000:])
        raise
    finally:
        stop_process_group(server)


def expected_pipelines() -> dict[str, tuple[set[str], Counter]]:
    """Per registered pipeline shown below: its top-level namespaces and its node names (as kedro-viz labels them)."""
    from aerial_kedro.pipeline_registry import register_pipelines

    pipelines = register_pipelines()
    shown = [name for name in ("train", "score") if name in pipelines]
    return {
        name: (
            {node.namespace.split(".")[0] for node in pipelines[name].nodes if node.namespace},
            Counter(node.name.rsplit(".", 1)[-1] for node in pipelines[name].nodes),
        )
        for name in shown
    }


def graph_labels(page, base: str, pipeline: str, expand: bool, drawn) -> list[tuple[str, str]]:
    """(kind, label) of every node drawn in the flowchart of one pipeline, read again until
    ``drawn(labels)`` holds or 60 s have passed: kedro-viz may draw the default pipeline before
    the one in the URL (a fixed wait lost that race on a busy machine)."""
    page.goto(f"{base}/?pid={pipeline}&expandAllPipelines={'true' if expand else 'false'}")
    page.wait_for_selector(".pipeline-node", timeout=60_000)
    dismiss = page.get_by_role("button", name="Dismiss")  # "new version" banner, when shown
    if dismiss.count():
        dismiss.first.click()
    deadline = time.monotonic() + 60
    while True:
        page.wait_for_timeout(500)  # layout settles
        labels = page.evaluate(
            """() => Array.from(document.querySelectorAll('.pipeline-node')).map(node => [
                   node.getAttribute('class').replace('pipeline-node pipeline-node--', ''),
                   node.textContent.trim()])"""
        )
        if drawn(labels) or time.monotonic() > deadline:
            return labels


def modular(labels: list[tuple[str, str]]) -> set[str]:
    return {label for kind, label in labels if kind == "modularPipeline"}


def tasks(labels: list[tuple[str, str]]) -> Counter[str]:
    return Counter(label for kind, label in labels if kind == "task")


def test_api_lists_every_registered_pipeline(viz_server):
    from aerial_kedro.pipeline_registry import register_pipelines

    _, api = viz_server
    assert {pipeline["id"] for pipeline in api["pipelines"]} == set(register_pipelines())
    namespaces = {node["name"] for node in api["nodes"] if node["type"] == "modularPipeline"}
    assert {"ingestion", "featurization", "logistic_regression", "random_forest", "evaluation"} <= namespaces


def test_api_shows_the_layers_in_data_engineering_order(viz_server):
    """kedro-viz drops every layer when they form a cycle (issue 20); here they are all shown."""
    _, api = viz_server
    convention = ["raw", "intermediate", "primary", "feature", "model_input", "models",
                  "model_output", "reporting"]  # fmt: skip
    assert api["layers"] == [layer for layer in convention if layer in api["layers"]]
    assert {"raw", "intermediate", "feature", "models", "model_output", "reporting"} <= set(
        api["layers"]
    )


def test_browser_shows_all_namespaces_and_nodes(viz_server, tmp_path):
    from playwright.sync_api import sync_playwright

    base, _ = viz_server
    expected = expected_pipelines()
    assert {"ingestion", "featurization", "logistic_regression", "random_forest", "evaluation"} <= expected["train"][0]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.add_init_script(NO_FEATURE_TOUR)
            for pipeline, (namespaces, nodes) in expected.items():
                collapsed = graph_labels(page, base, pipeline, False, lambda drawn, n=namespaces: modular(drawn) == n)
                assert modular(collapsed) == namespaces, pipeline
                expanded = graph_labels(page, base, pipeline, True, lambda drawn, n=nodes: tasks(drawn) == n)
                assert tasks(expanded) == nodes, pipeline
                page.screenshot(path=str(tmp_path / f"kedro_viz_{pipeline}.png"))
        finally:
            browser.close()
    screenshot = tmp_path / "kedro_viz_train.png"
    assert screenshot.stat().st_size > 20_000
    if os.environ.get("UPDATE_DOCS_IMAGES") == "1":
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, DOCS_SCREENSHOT)
