"""Raw bytes on any fsspec filesystem (local, abfs://, az://): used for ONNX featurizers."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import AbstractDataset, DatasetError, get_filepath_str, get_protocol_and_path


class BinaryFileDataset(AbstractDataset[bytes, bytes]):
    """Loads and saves one file as ``bytes``.

    Example catalog entry::

        featurizer_onnx:
          type: aerial_kedro.datasets.BinaryFileDataset
          filepath: data/06_models/featurizers/efficientnet_lite0.onnx
    """

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

    def load(self) -> bytes:
        path = self._full_path()
        if not self._fs.exists(path):
            raise DatasetError(
                f"{self._protocol}://{path} does not exist: run `kedro run --pipelines=train` first"
            )
        with self._fs.open(path, "rb") as stream:
            return stream.read()

    def save(self, data: bytes) -> None:
        path = self._full_path()
        if self._protocol == "file":
            self._fs.makedirs(str(PurePosixPath(path).parent), exist_ok=True)
        with self._fs.open(path, "wb") as stream:
            stream.write(data)

    def _exists(self) -> bool:
        return self._fs.exists(self._full_path())

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "protocol": self._protocol}
