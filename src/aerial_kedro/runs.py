"""Print the run history as a table: ``python -m aerial_kedro.runs [--project PATH] [--env ENV]``.

One row per classifier of every ``train`` run (the child runs ``RunTrackingHooks`` log), newest
first. The tracking store and experiment come from the project's ``conf/<env>/mlflow.yml``, exactly
as ``kedro run`` resolves them (override with ``--tracking-uri`` / ``--experiment``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient
from mlflow.tracking._tracking_service.utils import _use_tracking_uri

_TRACKING_URI_VARIABLE = "MLFLOW_TRACKING_URI"
COLUMNS = ("run", "featurizer", "classifier", "accuracy", "macro-F1", "date")


@dataclass(frozen=True)
class RunRow:
    """One classifier of one train run."""

    run: str  # the parent (train) run id, shortened: rows of one train share it
    featurizer: str
    classifier: str
    accuracy: float | None
    macro_f1: float | None
    started: datetime

    def cells(self) -> tuple[str, ...]:
        return (self.run, self.featurizer, self.classifier, _number(self.accuracy),
                _number(self.macro_f1), self.started.strftime("%Y-%m-%d %H:%M"))


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def project_tracking(project: Path, env: str | None) -> tuple[str, str]:
    """(tracking URI, experiment name) of a Kedro project, as kedro-mlflow sets them up."""
    logging.disable(logging.INFO)  # the table is the output; Kedro's start-up INFO lines are noise
    try:
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        bootstrap_project(project)
        # Not `with ... as session`: Kedro's __enter__ is typed as returning an AbstractSession.
        session = KedroSession.create(project_path=project, env=env)
        with session:
            # kedro-mlflow's after_context_created hook sets context.mlflow at run time.
            config = session.load_context().mlflow  # type: ignore[attr-defined]
    finally:
        logging.disable(logging.NOTSET)
    return config.server.mlflow_tracking_uri, config.tracking.experiment.name


@contextmanager
def _tracking_uri(uri: str) -> Iterator[None]:
    """``mlflow.search_runs`` reads the process-wide tracking URI: ``uri`` for the block only.

    A no-op when ``uri`` is already current (a Kedro session or notebook set it); otherwise both
    MLflow's setting and the ``MLFLOW_TRACKING_URI`` variable are put back as they were (MLflow's
    own helper unsets the variable when no URI had been set in code).
    """
    if mlflow.get_tracking_uri() == uri:
        yield
        return
    environment = os.environ.get(_TRACKING_URI_VARIABLE)
    try:
        with _use_tracking_uri(uri):
            yield
    finally:
        if environment is not None:
            os.environ[_TRACKING_URI_VARIABLE] = environment


def child_runs(tracking_uri: str, experiment_name: str) -> pd.DataFrame:
    """Every child (per-classifier) run of an experiment, newest first: ``mlflow.search_runs``'s
    frame (``run_id``, ``start_time``, ``metrics.*``, ``params.*``, ``tags.*``), empty when the
    experiment does not exist yet.
    """
    with _tracking_uri(tracking_uri):
        experiment = mlflow.get_experiment_by_name(experiment_name)
        if experiment is None:
            return pd.DataFrame()
        return mlflow.search_runs(
            experiment_ids=[experiment.experiment_id],
            filter_string="tags.mlflow.parentRunId != ''",
            order_by=["attributes.start_time DESC"],
        )


def run_rows(tracking: MlflowClient | str, experiment_name: str) -> list[RunRow]:
    """The table's rows (``tracking``: a client or a tracking URI); empty when the experiment does
    not exist yet."""
    uri = tracking.tracking_uri if isinstance(tracking, MlflowClient) else tracking
    frame = child_runs(uri, experiment_name)
    return [_row(run) for run in frame.to_dict("records")]


def _row(run: Mapping[str, Any]) -> RunRow:
    return RunRow(
        run=run["tags.mlflow.parentRunId"][:8],
        featurizer=run.get("tags.featurizer") or "?",
        classifier=run.get("tags.classifier") or run.get("tags.mlflow.runName") or "?",
        accuracy=_metric(run.get("metrics.accuracy")),
        macro_f1=_metric(run.get("metrics.macro_f1")),
        started=datetime.fromtimestamp(run["start_time"].timestamp()),  # local time, as MLflow's UI
    )


def _metric(value: Any) -> float | None:
    """A metric cell of the frame: NaN (not logged for this run) becomes None."""
    return None if value is None or pd.isna(value) else float(value)


def format_table(rows: Sequence[RunRow]) -> str:
    """Fixed-width text table with a header line."""
    cells = [COLUMNS, *(row.cells() for row in rows)]
    widths = [max(len(line[index]) for line in cells) for index in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
                     for line in cells)


@click.command()
@click.option("--project", type=click.Path(exists=True, file_okay=False, path_type=Path), default=Path.cwd,
              help="Kedro project root (default: the working directory).")
@click.option("--env", default=None, help="Kedro environment whose mlflow.yml to read (default: local).")
@click.option("--tracking-uri", default=None, help="Read this MLflow tracking store instead.")
@click.option("--experiment", default=None, help="Experiment name (default: the project's).")
def main(project: Path, env: str | None, tracking_uri: str | None, experiment: str | None) -> None:
    """Print one line per classifier of every train run: accuracy, macro-F1, date."""
    if tracking_uri is None or experiment is None:
        project_uri, project_experiment = project_tracking(project.resolve(), env)
        tracking_uri = tracking_uri or project_uri
        experiment = experiment or project_experiment
    rows = run_rows(tracking_uri, experiment)
    if not rows:
        click.echo(f"No train runs in experiment '{experiment}' at {tracking_uri}: run `kedro run --pipelines=train`.")
        return
    click.echo(f"Experiment '{experiment}' at {tracking_uri}")
    click.echo(format_table(rows))


if __name__ == "__main__":
    main()
