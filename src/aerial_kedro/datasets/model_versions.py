"""The featurizer files that go with a versioned model, and the blob model entries, versioned.

`train` saves every versioned entry of one ``kedro run`` under the same version (the run's
timestamp): the classifiers (:class:`.SparkMLModelDataset`) and the featurizer ONNX and spec
that made their features. A model of version ``V`` was trained on the featurizer saved last at or
before ``V`` (a run that retrains the models without featurizing again keeps the earlier
featurizer). So the featurizer entries here load, when given ``not_newer_than: V`` (the catalog
passes ``scoring.model_version``), the newest version ``<= V``; without it, the newest, as Kedro
does. Version strings are Kedro's timestamps, which sort as text.
"""

from __future__ import annotations

import logging
from pathlib import PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import (
    AbstractVersionedDataset,
    DatasetError,
    Version,
    VersionNotFoundError,
    get_filepath_str,
    get_protocol_and_path,
)

from aerial_kedro.datasets.atomic_datasets import JSONDataset, _write_whole
from aerial_kedro.datasets.blob_spark_dataset import BlobSparkMLModelDataset

logger = logging.getLogger(__name__)


class _NotNewerThan:
    """``resolve_load_version`` = the newest saved version ``<= not_newer_than`` (when set)."""

    _not_newer_than: str | None = None
    _version: Version | None  # set by the AbstractVersionedDataset this is mixed into

    def resolve_load_version(self) -> str | None:
        bound = self._not_newer_than
        if not self._version or self._version.load or bound is None:
            return super().resolve_load_version()  # type: ignore[misc]
        try:
            versions = self.list_versions(full_path=False)  # type: ignore[attr-defined]
        except VersionNotFoundError:
            versions = []
        for version in versions:  # newest first
            if version <= bound:
                if version != bound:
                    logger.info(
                        "%s: version %s, the newest saved by model version %s's run or before",
                        self._filepath, version, bound,  # type: ignore[attr-defined]
                    )  # fmt: skip
                return version
        raise DatasetError(
            f"No version of {self._filepath} saved at or before model version {bound} "  # type: ignore[attr-defined]
            f"(versions: {', '.join(versions) or 'none'}): train that model again"
        )

    def _get_load_path(self) -> PurePosixPath:
        """The versioned path; a file saved at ``filepath`` before models were versioned when no
        version exists (a project trained before the upgrade keeps scoring, with a warning)."""
        try:
            return super()._get_load_path()  # type: ignore[misc]
        except VersionNotFoundError:
            legacy = self._filepath  # type: ignore[attr-defined]
            if self._fs.isfile(get_filepath_str(legacy, self._protocol)):  # type: ignore[attr-defined]
                logger.warning(
                    "%s was saved before models were versioned: loading it as it is", legacy
                )
                return legacy
            raise


class VersionedBinaryFileDataset(_NotNewerThan, AbstractVersionedDataset[bytes, bytes]):
    """Raw bytes (the featurizer ONNX) on any fsspec filesystem, optionally versioned.

    Local saves go to a scratch file renamed into place, as :class:`.BinaryFileDataset`'s.
    """

    def __init__(
        self,
        *,
        filepath: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        version: Version | None = None,
        not_newer_than: str | None = None,
    ) -> None:
        protocol, path = get_protocol_and_path(filepath, version)
        self._protocol = protocol
        self._fs = fsspec.filesystem(protocol, **(credentials or {}), **(fs_args or {}))
        self._fs_open_args_save = {"mode": "wb"}
        self._not_newer_than = None if not_newer_than is None else str(not_newer_than)
        self.metadata = metadata
        super().__init__(
            filepath=PurePosixPath(path),
            version=version,
            exists_function=self._fs.exists,
            glob_function=self._fs.glob,
        )

    def load(self) -> bytes:
        try:
            path = get_filepath_str(self._get_load_path(), self._protocol)
        except VersionNotFoundError:
            path = None
        if path is None or not self._fs.exists(path):
            raise DatasetError(
                f"{self._protocol}://{self._filepath} does not exist: run "
                "`kedro run --pipelines=train` first"
            )
        with self._fs.open(path, "rb") as stream:
            return stream.read()

    def save(self, data: bytes) -> None:
        path = get_filepath_str(self._get_save_path(), self._protocol)
        if self._protocol == "file":
            self._fs.makedirs(str(PurePosixPath(path).parent), exist_ok=True)
        _write_whole(self, path, bytes(data))
        self._clear_version_cache()

    def _exists(self) -> bool:
        try:
            path = get_filepath_str(self._get_load_path(), self._protocol)
        except (VersionNotFoundError, DatasetError):
            return False
        return self._fs.exists(path)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath), "protocol": self._protocol,
                "version": self._version}  # fmt: skip


class VersionedJSONDataset(_NotNewerThan, JSONDataset):
    """:class:`.JSONDataset` (written whole) whose load can follow a model version."""

    def __init__(self, *, not_newer_than: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._not_newer_than = None if not_newer_than is None else str(not_newer_than)

    def _exists(self) -> bool:
        try:
            return super()._exists()
        except DatasetError:
            return False


class VersionedBlobSparkMLModelDataset(BlobSparkMLModelDataset):
    """:class:`.BlobSparkMLModelDataset` with Kedro dataset versioning (``versioned: true``)."""

    def __init__(
        self,
        *,
        filepath: str,
        credentials: dict[str, Any] | None = None,
        hadoop_conf: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        version: Version | None = None,
        load_version: str | None = None,
    ) -> None:
        super().__init__(
            filepath=filepath, credentials=credentials, hadoop_conf=hadoop_conf, metadata=metadata
        )
        self._init_versioning(version, load_version)

    def _glob(self, pattern: str) -> list[str]:
        spark = self._spark()
        with self._explaining(spark):
            return super()._glob(pattern)
