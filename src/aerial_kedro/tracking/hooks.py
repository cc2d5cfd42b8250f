"""The Kedro hooks of the run history, registered in ``settings.py``.

``SessionScopedMlflowHook`` is kedro-mlflow's hook, made safe for several sessions per process,
closing stale runs at session start (``close_stale_runs``) and redacting what it logs.
``RunTrackingHooks`` record the run kedro-mlflow opened through a ``RunLog``, and nothing when
kedro-mlflow opened no run (tracking disabled for the pipeline).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import mlflow
from kedro.framework.hooks import hook_impl
from kedro.pipeline.node import Node
from kedro_mlflow.framework.hooks import MlflowHook
from mlflow.entities import RunStatus
from mlflow.tracking import MlflowClient

from aerial_kedro.blob.urls import redact_url
from aerial_kedro.tracking.resolvers import register_project_path_resolver
from aerial_kedro.tracking.run_log import RunLog
from aerial_kedro.tracking.stale_runs import close_stale_runs

logger = logging.getLogger(__name__)


def redacted(value: Any) -> Any:
    """``value`` with every string in it passed through ``redact_url`` (structure kept)."""
    if isinstance(value, str):
        return redact_url(value)
    if isinstance(value, Mapping):
        return {key: redacted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redacted(item) for item in value]
    if isinstance(value, tuple):
        return tuple(redacted(item) for item in value)
    return value


class SessionScopedMlflowHook(MlflowHook):
    """kedro-mlflow's hook, forgetting the previous session's run when a new session starts.

    ``HOOKS`` instances live as long as the process. kedro-mlflow 2.0.3 sets ``run_id`` when it
    opens a run and never clears it, so in a process that runs several sessions (a notebook, the
    tests) a later run with tracking disabled would try to re-open the earlier run.

    At session start it also closes the runs whose process died (``close_stale_runs``), and every
    parameter and tag it logs is redacted (``redacted``): kedro-mlflow logs each node's parameters
    and the run's ``runtime_params`` verbatim.
    """

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self.run_id = None
        super().after_context_created(context)
        if self._already_active_mlflow:
            return
        try:
            name = self.mlflow_config.tracking.experiment.name
            client = MlflowClient(mlflow.get_tracking_uri())
            experiment = client.get_experiment_by_name(name)
            if experiment is not None:
                close_stale_runs(client, experiment.experiment_id)
        except Exception as error:  # noqa: BLE001 - housekeeping must not stop a run
            logger.warning("Could not check for stale MLflow runs: %s", redact_url(str(error)))

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        # kedro-mlflow tags the run with every non-empty run_params value (runtime_params included).
        super().before_pipeline_run(redacted(run_params), pipeline, catalog)

    def _log_param(self, name: str, value: Any) -> None:
        super()._log_param(name, redacted(value))


class RunTrackingHooks:
    """Logs tile counts, timings, metrics and artifacts into the MLflow run kedro-mlflow opened.

    Keyed on the datasets nodes save (``after_dataset_saved``), not on node names. Must be
    registered *before* kedro-mlflow's ``MlflowHook`` in ``HOOKS`` (hooks run last-in,
    first-out), so that the run is open when ``before_pipeline_run`` reaches this hook.
    """

    def __init__(self) -> None:
        self._run: RunLog | None = None

    @hook_impl(tryfirst=True)
    def after_context_created(self, context: Any) -> None:
        # tryfirst: conf/*/mlflow.yml is read by kedro-mlflow's after_context_created.
        register_project_path_resolver(context.project_path)

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        active = mlflow.active_run()
        if active is None:
            self._run = None
            logger.info("No MLflow run is open: run tracking is off for this run")
            return
        self._run = RunLog(MlflowClient(), active.info.run_id, active.info.experiment_id,
                           catalog.load("parameters"), catalog)
        names = run_params.get("pipeline_names") or [run_params.get("pipeline_name") or "__default__"]
        self._run.describe_parent(active.info.run_name, list(names))

    @hook_impl
    def before_node_run(self, node: Node) -> None:
        if self._run is not None:
            self._run.node_started(node)

    @hook_impl
    def after_node_run(self, node: Node) -> None:
        if self._run is not None:
            self._run.node_finished(node)

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any, node: Node) -> None:
        if self._run is not None:
            self._run.dataset_saved(dataset_name, data, node)

    @hook_impl(tryfirst=True)
    def after_pipeline_run(self) -> None:
        # tryfirst: log before kedro-mlflow's after_pipeline_run ends the parent run.
        self._close(RunStatus.FINISHED)

    @hook_impl(tryfirst=True)
    def on_pipeline_error(self) -> None:
        self._close(RunStatus.FAILED)

    def _close(self, status: int) -> None:
        if self._run is not None:
            self._run.finish(status)
            self._run = None

