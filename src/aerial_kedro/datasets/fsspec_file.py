"""The part every single-file dataset on an fsspec filesystem shares: path, filesystem, existence,
and replacing a local file in one step."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import PurePosixPath
from typing import Any, TypeVar

import fsspec
from kedro.io.core import AbstractDataset, DatasetError, get_filepath_str, get_protocol_and_path

_DI = TypeVar("_DI")
_DO = TypeVar("_DO")


@contextmanager
def replacing(path: str) -> Iterator[str]:
    """A scratch path beside local ``path``, renamed onto it (``os.replace``) if the block succeeds.

    Writing a product in place truncates it first: a reader (QGIS, a web server, a concurrent
    run) would see a half-written file, and a writer that fails midway would leave one where the
    previous good product was. A rename within one folder is atomic on POSIX and Windows, so
    ``path`` holds the old file or the complete new one, never a part. The scratch name is
    hidden (``.<name>.<pid>-<random>.part``) and removed when the block raises; the writer
    creates it, so the product gets the usual permissions. Blob uploads (``put_file``, fsspec
    ``open("wb")``) need no such step: a blob becomes visible only when its upload commits.
    """
    folder, name = os.path.split(path)
    scratch = os.path.join(folder, f".{name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part")
    try:
        yield scratch
        os.replace(scratch, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.remove(scratch)
        raise


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
