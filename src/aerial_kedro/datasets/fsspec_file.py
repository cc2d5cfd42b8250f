"""The part every single-file dataset on an fsspec filesystem shares: path, filesystem, existence."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any, TypeVar

import fsspec
from kedro.io.core import AbstractDataset, DatasetError, get_filepath_str, get_protocol_and_path

_DI = TypeVar("_DI")
_DO = TypeVar("_DO")


class FsspecFileDataset(AbstractDataset[_DI, _DO]):
    """One file at ``filepath`` (local, ``abfs://``, ``az://`` …); subclasses add ``load``/``save``."""

    def __init__(
        self,
        *,
        filepath: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        protocol, path = get_protocol_and_path(filepath)
        self._protocol = protocol
        self._filepath = PurePosixPath(path)
        self._fs = fsspec.filesystem(protocol, **(credentials or {}), **(fs_args or {}))
        self.metadata = metadata

    def _full_path(self) -> str:
        return get_filepath_str(self._filepath, self._protocol)

    def _existing_path(self, hint: str = "") -> str:
        """The full path, or a DatasetError naming it (plus ``hint``) when there is no file."""
        path = self._full_path()
        if not self._fs.exists(path):
            raise DatasetError(f"{self._protocol}://{path} does not exist{hint}")
        return path

    def _make_local_parent(self, path: str) -> None:
        if self._protocol == "file":
            self._fs.makedirs(str(PurePosixPath(path).parent), exist_ok=True)

    def _exists(self) -> bool:
        return self._fs.exists(self._full_path())

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "protocol": self._protocol}
