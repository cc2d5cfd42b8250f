"""The import rules of the layout (docs/layout.md): a pipeline uses shared packages, never
another pipeline's code; shared packages never import a pipeline."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "aerial_kedro"
PIPELINES = sorted(p.name for p in (PACKAGE / "pipelines").iterdir() if (p / "pipeline.py").exists())
SHARED = ("chips", "models", "geo", "change", "featurizers", "assessment", "datasets", "blob", "tracking")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def pipeline_imports(folder: Path) -> dict[str, set[str]]:
    """``{file: {pipeline names it imports from}}`` for every module under ``folder``."""
    found = {}
    for path in folder.rglob("*.py"):
        used = {
            module.split(".")[2]
            for module in imported_modules(path)
            if module.startswith("aerial_kedro.pipelines.")
        }
        if used:
            found[str(path.relative_to(PACKAGE))] = used
    return found


def test_the_pipelines_are_found():
    assert {"scoring", "change", "reference", "assess", "modeling"} <= set(PIPELINES)


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_a_pipeline_imports_no_other_pipeline(pipeline):
    foreign = {
        path: used - {pipeline}
        for path, used in pipeline_imports(PACKAGE / "pipelines" / pipeline).items()
        if used - {pipeline}
    }
    assert not foreign, f"move the shared code into a package beside pipelines/: {foreign}"


@pytest.mark.parametrize("package", SHARED)
def test_a_shared_package_imports_no_pipeline(package):
    assert not pipeline_imports(PACKAGE / package)
