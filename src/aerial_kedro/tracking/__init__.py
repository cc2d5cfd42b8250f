"""Run history in MLflow, on top of kedro-mlflow.

kedro-mlflow opens one MLflow run per ``kedro run`` and logs every parameter a node reads
(``featurizer``, ``seed``, ``tiles_dir``, ``ingestion.sample_frac``, each namespace's
``<model>.classifier.*``). This package adds what only the pipeline's outputs and timings tell:

- :mod:`~aerial_kedro.tracking.run_log`: ``RunLog``, what one run logs (tile counts, timings,
  metrics, a child run per classifier with its fitted model), keyed on the datasets saved;
- :mod:`~aerial_kedro.tracking.stale_runs`: every run is tagged with the host and process that own
  it, so that the next session start can close runs whose process died without ending them
  (SIGKILL, OOM killer): ``close_stale_runs``;
- :mod:`~aerial_kedro.tracking.hooks`: the Kedro hooks registered in ``settings.py``
  (``RunTrackingHooks``, which drive a ``RunLog``, and ``SessionScopedMlflowHook``, kedro-mlflow's
  hook with stale-run cleanup and redaction);
- :mod:`~aerial_kedro.tracking.resolvers`: the config resolvers ``conf/*/mlflow.yml`` uses
  (``${project_path:}``, ``${required_env:NAME}``).

Every parameter value and run tag goes through ``redact_url``: a SAS URL passed as
``score_source`` or ``tiles_dir`` must not be kept in the run history.
"""
