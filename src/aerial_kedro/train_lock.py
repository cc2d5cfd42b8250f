"""One ``train`` at a time per output folder: the lock ``score`` takes per run, taken by training.

Two ``train`` runs of one project at once wrote the same Spark outputs and collided
(``FileNotFoundException ... tile_index/_temporary/0``). A run whose pipeline writes
``tile_index`` holds the file lock ``train`` of that dataset's folder
(:func:`aerial_kedro.datasets.run_lock.run_lock`, as scoring runs hold theirs) from before Spark
starts until the run ends; a second run waits for it, and one waiting longer than
``AERIAL_KEDRO_TRAIN_LOCK_TIMEOUT_S`` (default one hour) fails with one line naming the lock.
Outputs in Azure Blob are not locked here (the lease needs the Spark session's credentials,
which start after this hook): that is said in one warning line.
"""

from __future__ import annotations

import logging
import os
import posixpath
from contextlib import ExitStack
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.pipeline import Pipeline

from aerial_kedro.datasets.run_lock import DEFAULT_TIMEOUT_S, local_folder, run_lock

logger = logging.getLogger(__name__)

LOCKED_OUTPUT = "tile_index"
LOCK_NAME = "train"
TIMEOUT_VARIABLE = "AERIAL_KEDRO_TRAIN_LOCK_TIMEOUT_S"


def lock_folder(filepath: str) -> str | None:
    """The local folder whose lock guards a training run writing ``filepath``; None for URLs."""
    folder = local_folder(filepath)
    return None if folder is None else posixpath.dirname(folder.rstrip("/")) or "."


class TrainLockHooks:
    def __init__(self) -> None:
        self._held = ExitStack()

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any) -> None:
        if LOCKED_OUTPUT not in pipeline.all_outputs():
            return
        filepath = str(catalog.get(LOCKED_OUTPUT)._describe().get("filepath", ""))
        folder = lock_folder(filepath)
        if folder is None:
            logger.warning("Training outputs in %s are not locked against a second train at once",
                           filepath.split("?", 1)[0])  # fmt: skip
            return
        timeout = float(os.environ.get(TIMEOUT_VARIABLE, DEFAULT_TIMEOUT_S))
        self._held.enter_context(run_lock(folder, LOCK_NAME, timeout))

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._held.close()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._held.close()
