"""Resolve an environment's whole configuration offline and say where every dataset lives.

``python -m aerial_kedro.blob check-config --env hdinsight`` (or ``check_environment``) catches,
before a cluster run: a missing environment variable (all of them named at once), a config that
does not resolve, a dataset that cannot be instantiated, and a dataset still on a local path. It
starts no Spark and opens no connection: dataset objects are built, never loaded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_ENV_REFERENCE = re.compile(r"\$\{\s*(?:oc\.env|required_env)\s*:\s*([A-Za-z_][A-Za-z0-9_]*)\s*(,)?")
REMOTE_SCHEMES = ("wasbs://", "wasb://", "abfss://", "abfs://", "az://")


class ConfigCheckError(ValueError):
    """The environment's config cannot work; the message names every culprit."""


@dataclass(frozen=True)
class DatasetLocation:
    name: str
    type: str
    location: str | None  # None: not in the catalog (kept in memory during a run)

    @property
    def is_remote(self) -> bool:
        return self.location is not None and self.location.startswith(REMOTE_SCHEMES)


@dataclass(frozen=True)
class CheckReport:
    env: str
    datasets: list[DatasetLocation]

    def __str__(self) -> str:
        lines = [f"Environment '{self.env}': {len(self.persisted)} datasets resolved"]
        lines += [f"  {d.name:<45} {d.type:<28} {d.location}" for d in self.persisted]
        return "\n".join(lines)

    @property
    def persisted(self) -> list[DatasetLocation]:
        return [d for d in self.datasets if d.location is not None]


def required_variables(conf_root: Path, env: str, base_env: str = "base") -> dict[str, list[str]]:
    """``{variable: [files]}`` for every ``${oc.env:X}`` / ``${required_env:X}`` without a default."""
    found: dict[str, list[str]] = {}
    for folder in (conf_root / base_env, conf_root / env):
        for path in sorted(folder.rglob("*.yml")) + sorted(folder.rglob("*.yaml")):
            for name in _references_without_default(yaml.safe_load(path.read_text()) or {}):
                found.setdefault(name, []).append(str(path.relative_to(conf_root.parent)))
    return found


def _references_without_default(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _references_without_default(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references_without_default(value)
    elif isinstance(node, str):
        yield from (match[1] for match in _ENV_REFERENCE.finditer(node) if not match[2])


def check_missing_variables(conf_root: Path, env: str) -> None:
    required = required_variables(conf_root, env)
    missing = sorted(name for name in required if not os.environ.get(name))
    if missing:
        files = sorted({file for name in missing for file in required[name]})
        raise ConfigCheckError(
            f"Environment '{env}' needs environment variable(s) that are not set: "
            f"{', '.join(missing)} (used in {', '.join(files)})"
        )


def load_environment(project: Path, env: str) -> dict[str, Any]:
    """Every config group of ``env`` (catalog, credentials, parameters, spark, ...) resolved."""
    from kedro.framework.project import settings
    from kedro.framework.startup import bootstrap_project

    from aerial_kedro.tracking.resolvers import register_project_path_resolver

    bootstrap_project(project)
    register_project_path_resolver(project)
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(project / settings.CONF_SOURCE), env=env, **settings.CONFIG_LOADER_ARGS
    )
    groups = {"catalog", "credentials", "parameters", *loader.config_patterns}
    return {group: loader[group] for group in sorted(groups)}


def dataset_locations(config: dict[str, Any]) -> list[DatasetLocation]:
    """Instantiate every dataset the registered pipelines use; report type and location."""
    from kedro.framework.project import pipelines, settings

    catalog = settings.DATA_CATALOG_CLASS.from_config(config["catalog"], config["credentials"])
    names = sorted(
        {name for pipeline in pipelines.values() for name in pipeline.datasets()}
        - {"parameters"}
    )
    locations = []
    for name in names:
        if name.startswith("params:"):
            continue
        dataset = catalog.get(name)
        if dataset is None:
            locations.append(DatasetLocation(name, "MemoryDataset", None))
            continue
        if type(dataset).__name__.startswith("Mlflow"):
            # Logged to the MLflow tracking server (mlflow.yml), not stored by the catalog.
            locations.append(DatasetLocation(name, type(dataset).__name__, None))
            continue
        resolved = catalog.config_resolver.config.get(name) or catalog.config_resolver.resolve_pattern(name)
        locations.append(DatasetLocation(name, type(dataset).__name__, _location(dataset, resolved)))
    return locations


def _location(dataset: Any, config: dict[str, Any]) -> str:
    """Where the catalog puts the dataset: its URL (fsspec ones: plus the credentials' account)."""
    described = dataset._describe()
    if isinstance(described.get("dataset"), dict):  # a wrapper (OptionalDataset): where it points
        described, config = described["dataset"], config.get("dataset", config)
    filepath = str(described.get("filepath", config.get("filepath", "")))
    protocol = described.get("protocol")
    if "://" in filepath or not protocol or protocol == "file":
        return filepath
    account = (config.get("credentials") or {}).get("account_name")
    return f"{protocol}://{filepath}" + (f" [account {account}]" if account else "")


def check_environment(project: Path, env: str) -> CheckReport:
    """Raise ``ConfigCheckError`` naming every problem; else the report of where data lives."""
    project = Path(project).resolve()
    check_missing_variables(project / "conf", env)
    config = load_environment(project, env)
    report = CheckReport(env, dataset_locations(config))
    local = [d for d in report.persisted if not d.is_remote]
    if local:
        listed = ", ".join(f"{d.name} ({d.location})" for d in local)
        raise ConfigCheckError(f"Environment '{env}' keeps datasets on a local disk: {listed}")
    return report
