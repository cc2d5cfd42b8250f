"""The py4j view of a Spark session's JVM: Hadoop filesystem calls the Python API lacks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def spark_jvm(spark: SparkSession) -> Any:
    """``spark.sparkContext._jvm``, set while the SparkContext runs (pyspark types it Optional)."""
    jvm = spark.sparkContext._jvm
    if jvm is None:
        raise RuntimeError("the SparkContext has no JVM (it was stopped)")
    return jvm
