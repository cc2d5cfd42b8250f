"""notebooks/model_prediction_analysis.ipynb runs headless, without a cell error, on a trained project."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import PROJECT_ROOT
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

NOTEBOOK = PROJECT_ROOT / "notebooks" / "model_prediction_analysis.ipynb"
KERNEL = "kedro_aerial_kedro"  # the name `kedro jupyter setup` gives the project's kernel


def kernel_manager(data_dir: Path) -> AsyncKernelManager:
    """The kernel `kedro jupyter notebook` / `lab` start: the spec `kedro jupyter setup` writes
    (this venv's ipykernel with Kedro's IPython extension), in a private Jupyter data folder.
    Only the Jupyter server is left out: the suite has none and needs none to run a kernel."""
    subprocess.run(
        [sys.executable, "-m", "kedro", "jupyter", "setup"],
        cwd=PROJECT_ROOT, env={**os.environ, "JUPYTER_DATA_DIR": str(data_dir)},
        check=True, capture_output=True, timeout=300,
    )
    specs = KernelSpecManager(kernel_dirs=[str(data_dir / "kernels")], ensure_native_kernel=False)
    assert "kedro.ipython" in specs.get_kernel_spec(KERNEL).argv
    return AsyncKernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)


def outputs_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        parts.extend(str(value) for key, value in output.get("data", {}).items() if key.startswith("text/"))
    return "\n".join(parts)


def has_image(cell: nbformat.NotebookNode) -> bool:
    return any("image/png" in output.get("data", {}) for output in cell.get("outputs", []))


def cell_with(notebook: nbformat.NotebookNode, source_fragment: str) -> nbformat.NotebookNode:
    return next(cell for cell in notebook.cells if source_fragment in cell.source)


def test_notebook_runs_on_a_trained_project(trained_project, tmp_path, monkeypatch):
    # The kernel inherits this environment: the notebook's parameter cell reads the project from it.
    monkeypatch.setenv("AERIAL_KEDRO_PROJECT", str(trained_project))
    monkeypatch.setenv("KEDRO_ENV", "local")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        km=kernel_manager(tmp_path / "jupyter"),
        timeout=240,
        resources={"metadata": {"path": str(trained_project)}},  # kernel cwd
    )
    try:
        client.execute()  # raises CellExecutionError on the first failing cell
    finally:
        nbformat.write(notebook, tmp_path / "executed.ipynb")  # kept for debugging a failure

    assert "Featurizer efficientnet_lite0" in outputs_text(cell_with(notebook, 'summary = catalog.load("metrics_summary")'))
    assert "2 classifier runs in sqlite:" in outputs_text(cell_with(notebook, "run_rows("))
    assert has_image(cell_with(notebook, "plot_confusion_matrix(matrix"))
    assert "test tiles misclassified; showing" in outputs_text(cell_with(notebook, "n_wrong, n_test"))
    assert has_image(cell_with(notebook, "def read_tiles"))
    scoring = cell_with(notebook, 'scoring.class_shares" in catalog')
    if (trained_project / "data/08_reporting/maps/czech_s2_tci_20220319/class_shares.json").exists():  # a scoring test ran first
        assert "Source " in outputs_text(scoring) and has_image(scoring)
    else:
        assert "Not scored yet" in outputs_text(scoring)
