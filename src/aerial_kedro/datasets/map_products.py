"""Map products kept per scored source: ``filepath`` with ``{source}`` = the source's name.

``score`` used to write one set of map products, so scoring a second source replaced the first
one's COG, PNG and STAC Item. Each product entry is now a :class:`SourceMapDataset`: the folder
under ``folder`` is named after the source being scored (``source``, the catalog passes the same
runtime parameter ``score_source`` reads, default included), with the name the scoring run gives
it (:func:`aerial_kedro.chips.planning.source_slug` of the source, SAS tokens
redacted): ``data/08_reporting/maps/czech_s2_tci_20220319/land_use_classes.tif``. Scoring another
source writes another folder; scoring the same source again replaces its own products.

:class:`MapIndexDataset` keeps ``<folder>/index.json``: one entry per source scored (source, run,
model and its version, when, the files in its folder), updated by each run, logged at its end.
"""

from __future__ import annotations

import json
import logging
from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import (
    AbstractDataset,
    DatasetError,
    get_protocol_and_path,
    parse_dataset_definition,
)

from aerial_kedro.blob.urls import redact_url
from aerial_kedro.chips.planning import source_slug
from aerial_kedro.datasets.atomic_datasets import _write_whole

logger = logging.getLogger(__name__)


def source_folder_name(source: Any) -> str:
    """The folder of ``source``'s products: the scoring run's ``source_name``."""
    if source is None or str(source).strip() == "":
        raise DatasetError("score_source is not set: the map products have no folder")
    return source_slug(redact_url(str(source)))


class SourceMapDataset(AbstractDataset[Any, Any]):
    """One map product of the source being scored, in that source's folder.

    ``dataset`` is the product's own dataset (type, or ``{type: ..., save_args: ...}``), built at
    ``filepath`` with its ``{source}`` replaced by the source's name; load, save, existence and
    the kedro-viz preview are its.
    """

    def __init__(
        self,
        *,
        dataset: dict[str, Any] | str,
        filepath: str,
        source: str,
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if "{source}" not in filepath:
            raise DatasetError(f"filepath '{filepath}' has no {{source}} folder for the source")
        self._name = source_folder_name(source)
        self._filepath = filepath.replace("{source}", self._name)
        config: dict[str, Any] = {"type": dataset} if isinstance(dataset, str) else dict(dataset)
        config["filepath"] = self._filepath
        if credentials is not None:
            config.setdefault("credentials", credentials)
        dataset_class, kwargs = parse_dataset_definition(config)
        self._dataset = dataset_class(**kwargs)
        self.metadata = metadata
        if hasattr(self._dataset, "preview"):  # kedro-viz reads the preview's return annotation
            self.preview = self._dataset.preview

    @property
    def source_name(self) -> str:
        return self._name

    def load(self) -> Any:
        return self._dataset.load()

    def save(self, data: Any) -> None:
        self._dataset.save(data)

    def _exists(self) -> bool:
        return self._dataset.exists()

    def _describe(self) -> dict[str, Any]:
        inner = self._dataset._describe()
        return {**inner, "filepath": inner.get("filepath", self._filepath), "source": self._name}


class MapIndexDataset(AbstractDataset[dict[str, Any], dict[str, Any]]):
    """``filepath`` (``maps/index.json``): every source whose map products are in its folder.

    ``save(entry)`` records the run's entry under its source name, with the files its folder now
    holds, keeping the other sources' entries; ``load()`` gives ``{"maps": {name: entry}}``.
    """

    def __init__(
        self,
        *,
        filepath: str,
        source: str,
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        protocol, path = get_protocol_and_path(str(filepath))
        self._protocol = protocol
        self._folder = str(PurePosixPath(path).parent)
        self._filename = PurePosixPath(path).name
        self._name = source_folder_name(source)
        self._fs = fsspec.filesystem(protocol, **(credentials or {}))
        self._fs_open_args_save = {"mode": "w"}
        self.metadata = metadata

    def _path(self, *parts: str) -> str:
        return str(PurePosixPath(self._folder, *parts))

    def _shown(self, path: str) -> str:
        return path if self._protocol == "file" else redact_url(f"{self._protocol}://{path}")

    def load(self) -> dict[str, Any]:
        path = self._path(self._filename)
        if not self._fs.exists(path):
            return {"maps": {}}
        with self._fs.open(path, "r", encoding="utf-8") as stream:
            return json.load(stream)

    def save(self, data: dict[str, Any]) -> None:
        entry = dict(data)
        name = entry.get("source_name") or self._name
        if name != self._name:
            raise DatasetError(
                f"The map products went to '{self._name}' (the catalog's score_source) but the run "
                f"scored '{entry.get('source')}' ('{name}'): set score_source with --params, or "
                "keep the defaults in parameters_scoring.yml and catalog_scoring.yml equal"
            )
        folder = self._path(self._name)
        files = self._files(folder)
        entry.update(folder=self._shown(folder), files=files)
        index = self.load()
        maps = dict(index.get("maps") or {})
        maps[self._name] = entry
        index = {"maps": dict(sorted(maps.items()))}
        if self._protocol == "file":
            self._fs.makedirs(self._folder, exist_ok=True)
        _write_whole(self, self._path(self._filename), json.dumps(index, indent=2))
        logger.info(
            "Map products of %s (%s) in %s/: %s",
            entry.get("source"), entry.get("kind"), self._shown(folder), ", ".join(files) or "none",
        )  # fmt: skip
        logger.info(
            "%d source(s) mapped under %s/ (%s): %s",
            len(maps), self._shown(self._folder), self._filename, ", ".join(maps),
        )  # fmt: skip

    def _files(self, folder: str) -> list[str]:
        """The products in ``folder``: files and GeoParquet folders, scratch files left out."""
        if not self._fs.exists(folder):
            return []
        names = []
        for info in self._fs.ls(folder, detail=True):
            name = PurePosixPath(str(info["name"])).name
            if not name.startswith("."):
                names.append(name)
        return sorted(names)

    def _exists(self) -> bool:
        return self._fs.exists(self._path(self._filename))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._path(self._filename), "protocol": self._protocol,
                "source": self._name}  # fmt: skip
