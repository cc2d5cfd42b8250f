"""A catalog entry that may not exist yet: loads ``None`` instead of failing.

``assess`` leaves out the chips `train` learned from (``reference_training_chips``), but a map
may come from a model trained on tile folders only, in which case that table was never written.
Kedro fails on loading a missing file; this wrapper says so in the log and loads ``None``.
"""

from __future__ import annotations

import logging
from typing import Any

from kedro.io.core import AbstractDataset, parse_dataset_definition

logger = logging.getLogger(__name__)


class OptionalDataset(AbstractDataset[Any, Any]):
    """Wraps any dataset (``dataset: {type: ..., ...}``); ``load`` gives None when it does not exist."""

    def __init__(
        self,
        *,
        dataset: dict[str, Any] | str,
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        config: dict[str, Any] = {"type": dataset} if isinstance(dataset, str) else dict(dataset)
        if credentials is not None:
            config.setdefault("credentials", credentials)
        dataset_class, kwargs = parse_dataset_definition(config)
        self._dataset = dataset_class(**kwargs)
        self.metadata = metadata

    def load(self) -> Any:
        if not self._dataset.exists():
            logger.info("%s does not exist: loaded as None", self._dataset)
            return None
        return self._dataset.load()

    def save(self, data: Any) -> None:
        self._dataset.save(data)

    def _exists(self) -> bool:
        return self._dataset.exists()

    def _describe(self) -> dict[str, Any]:
        return {"dataset": self._dataset._describe()}
