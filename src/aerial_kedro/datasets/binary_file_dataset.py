"""Raw bytes on any fsspec filesystem (local, abfs://, az://): used for ONNX featurizers."""

from __future__ import annotations

from aerial_kedro.datasets.fsspec_file import FsspecFileDataset


class BinaryFileDataset(FsspecFileDataset[bytes, bytes]):
    """Loads and saves one file as ``bytes``.

    Example catalog entry::

        featurizer_onnx:
          type: aerial_kedro.datasets.BinaryFileDataset
          filepath: data/06_models/featurizers/efficientnet_lite0.onnx
    """

    def load(self) -> bytes:
        path = self._existing_path(": run `kedro run --pipelines=train` first")
        with self._fs.open(path, "rb") as stream:
            return stream.read()

    def save(self, data: bytes) -> None:
        path = self._full_path()
        self._make_local_parent(path)
        with self._fs.open(path, "wb") as stream:
            stream.write(data)
