"""A fitted Spark ML ``PipelineModel`` saved with Spark's own writer (local, wasbs://, abfss://)."""

from __future__ import annotations

from typing import Any

from kedro.io.core import AbstractDataset, DatasetError
from pyspark.ml import PipelineModel
from pyspark.sql import SparkSession


class SparkMLModelDataset(AbstractDataset[PipelineModel, PipelineModel]):
    """Saves through ``model.write().overwrite()`` and loads with ``PipelineModel.load``.

    Spark resolves the path itself, so any filesystem the session's Hadoop configuration knows works.
    """

    def __init__(self, *, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = filepath
        self.metadata = metadata

    def load(self) -> PipelineModel:
        if not self._exists():
            raise DatasetError(
                f"No Spark ML model at '{self._filepath}': run `kedro run --pipelines=train` first"
            )
        return PipelineModel.load(self._filepath)

    def save(self, data: PipelineModel) -> None:
        if not isinstance(data, PipelineModel):
            raise DatasetError(f"Expected a pyspark PipelineModel, got {type(data).__name__}")
        data.write().overwrite().save(self._filepath)

    def _exists(self) -> bool:
        spark = SparkSession.getActiveSession() or SparkSession.builder.getOrCreate()
        jvm = spark.sparkContext._jvm
        hadoop_path = jvm.org.apache.hadoop.fs.Path(self._filepath)
        filesystem = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        return bool(filesystem.exists(hadoop_path.suffix("/metadata")))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}
