"""Raw bytes on any fsspec filesystem (local, abfs://, az://): used for ONNX featurizers."""

from __future__ import annotations

from aerial_kedro.datasets.fsspec_file import FsspecFileDataset, replacing


class BinaryFileDataset(FsspecFileDataset[bytes, bytes]):
    """Loads and saves one file as ``bytes``.

    A local save writes a scratch file beside the target and renames it into place, so a model
    being replaced is never read half-written and a failed save keeps the previous file.

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
        if self._protocol == "file":
            self._make_local_parent(path)
            with replacing(path) as scratch, open(scratch, "xb") as stream:
                stream.write(data)
            return
        with self._fs.open(path, "wb") as stream:  # a blob appears only when the upload commits
            stream.write(data)
