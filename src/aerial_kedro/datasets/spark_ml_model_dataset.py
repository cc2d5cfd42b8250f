"""A fitted Spark ML ``PipelineModel`` saved with Spark's own writer (local, wasbs://, abfss://).

With ``versioned: true`` in the catalog every save is kept: Kedro's dataset versioning puts it at
``<filepath>/<version>/<name>`` (``version`` = the ``kedro run``'s timestamp, e.g.
``2026-11-03T09.12.45.120Z``), a load takes the newest one, or the version named by
``load_version`` (the catalog passes ``scoring.model_version`` there) or
``kedro run --load-versions=<entry>:<version>``. Spark's Hadoop filesystem lists the versions,
so the same works on wasb(s):// and abfs(s)://.
"""

from __future__ import annotations

import logging
from pathlib import PurePosixPath
from typing import Any

from kedro.io.core import AbstractVersionedDataset, DatasetError, Version, VersionNotFoundError
from pyspark.ml import PipelineModel
from pyspark.sql import SparkSession

from aerial_kedro.datasets.spark_jvm import spark_jvm

logger = logging.getLogger(__name__)

# The version a model was loaded from, set on the loaded PipelineModel (None: an unversioned model).
VERSION_ATTRIBUTE = "aerial_model_version"


def loaded_version(model: PipelineModel) -> str | None:
    """The dataset version ``model`` was loaded from (None when unversioned or built in memory)."""
    return getattr(model, VERSION_ATTRIBUTE, None)


class SparkMLModelDataset(AbstractVersionedDataset[PipelineModel, PipelineModel]):
    """Saves through ``model.write()`` and loads with ``PipelineModel.load``.

    Spark resolves the path itself, so any filesystem the session's Hadoop configuration knows
    works. Unversioned (the default), a save overwrites the model in place; versioned, a save
    never touches an earlier version. A versioned entry whose folder holds only a model saved
    before versioning was switched on loads that model (with a warning) instead of failing.
    """

    def __init__(
        self,
        *,
        filepath: str,
        credentials: None = None,
        metadata: dict[str, Any] | None = None,
        version: Version | None = None,
        load_version: str | None = None,
    ) -> None:
        # The catalog entry is written once in conf/base with `credentials:
        # ${globals:spark_credentials}`, null where Spark's own Hadoop configuration reaches the
        # files; an environment that needs credentials uses the blob subclass (globals.yml).
        if credentials is not None:
            raise DatasetError(
                f"the model at '{filepath}' got credentials, which {type(self).__name__} does "
                "not use: set globals spark_model_dataset to "
                "aerial_kedro.datasets.model_versions.VersionedBlobSparkMLModelDataset"
            )
        self._uri = str(filepath).rstrip("/")
        self.metadata = metadata
        self._init_versioning(version, load_version)

    def _init_versioning(self, version: Version | None, load_version: str | None) -> None:
        """Versioning set-up, shared with the blob subclasses (their ``__init__`` calls it)."""
        if load_version is not None:
            if version is None:
                raise DatasetError(
                    f"load_version '{load_version}' for the model at '{self._uri}' needs "
                    "`versioned: true` on its catalog entry"
                )
            version = Version(str(load_version), version.save)
        AbstractVersionedDataset.__init__(
            self,
            PurePosixPath(self._uri),
            version,
            exists_function=self._model_exists,
            glob_function=self._glob,
        )

    # ------------------------------------------------------------------ paths (strings: URLs stay whole)

    # A string, not Kedro's PurePosixPath, which would fold the "//" of a URL.
    def _get_versioned_path(self, version: str) -> str:  # type: ignore[override]
        super()._get_versioned_path(version)  # Kedro's check of the version string
        name = self._uri.rsplit("/", 1)[-1]
        return f"{self._uri}/{version}/{name}"

    def _load_uri(self) -> str:
        if not self._version:
            return self._uri
        try:
            return str(self._get_load_path())
        except VersionNotFoundError:
            if self._version.load is None and self._model_exists(self._uri):
                logger.warning(
                    "%s holds a model saved before versioning, no version: loading it", self._uri
                )
                return self._uri
            raise DatasetError(
                f"No Spark ML model at '{self._uri}': run `kedro run --pipelines=train` first"
            ) from None

    def versions(self) -> list[str]:
        """Versions saved at this entry, newest first (empty when unversioned or none)."""
        if not self._version:
            return []
        try:
            return self.list_versions(full_path=False)
        except VersionNotFoundError:
            return []

    # ------------------------------------------------------------------ load / save

    def load(self) -> PipelineModel:
        path = self._load_uri()
        if not self._model_exists(path):
            if self._version and self._version.load:
                known = ", ".join(self.versions()) or "none"
                raise DatasetError(
                    f"No version '{self._version.load}' of the Spark ML model at '{self._uri}' "
                    f"(versions: {known})"
                )
            raise DatasetError(
                f"No Spark ML model at '{self._uri}': run `kedro run --pipelines=train` first"
            )
        model = PipelineModel.load(path)
        version = PurePosixPath(path).parent.name if path != self._uri else None
        setattr(model, VERSION_ATTRIBUTE, version)
        return model

    def save(self, data: PipelineModel) -> None:
        if not isinstance(data, PipelineModel):
            raise DatasetError(f"Expected a pyspark PipelineModel, got {type(data).__name__}")
        if not self._version:
            data.write().overwrite().save(self._uri)
            return
        path = str(self._get_save_path())  # refuses an existing version
        data.write().save(path)
        self._clear_version_cache()
        logger.info("Saved model version %s at %s", self.resolve_save_version(), path)

    # ------------------------------------------------------------------ Hadoop filesystem

    def _hadoop(self, path: str) -> tuple[Any, Any]:
        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        jvm = spark_jvm(spark)
        hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
        return hadoop_path, hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())

    def _model_exists(self, path: str) -> bool:
        hadoop_path, filesystem = self._hadoop(str(path))
        return bool(filesystem.exists(hadoop_path.suffix("/metadata")))

    def _glob(self, pattern: str) -> list[str]:
        hadoop_path, filesystem = self._hadoop(str(pattern))
        statuses = filesystem.globStatus(hadoop_path) or []
        return [status.getPath().toString() for status in statuses]

    def _exists(self) -> bool:
        try:
            return self._model_exists(self._load_uri())
        except DatasetError:
            return False

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._uri, "version": self._version}
