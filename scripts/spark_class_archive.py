"""Load the JVM classes a test's Spark driver loads, so that a JVM started with
``-XX:ArchiveClassesAtExit=<file>`` archives them (class data sharing, JDK 13+).

`make test` starts Spark drivers by the dozen (the test session's own, every `kedro run`
subprocess); each then maps the archive instead of reading and verifying the same classes
from ~250 jars: a local Spark session starts in 3.9 s instead of 6.4 s on 2 cores.
Run by the Makefile; no output but Spark's own.
"""

from __future__ import annotations

import sys
import tempfile

import pandas as pd
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import VectorAssembler
from pyspark.sql import SparkSession


def main() -> None:
    spark = (
        SparkSession.builder.master("local[2]")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    frame = spark.createDataFrame(
        pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0] * 4, "y": [0, 0, 1, 1] * 4})
    )
    with tempfile.TemporaryDirectory() as folder:
        frame.write.parquet(f"{folder}/frame")
        frame = spark.read.parquet(f"{folder}/frame")
        frame.mapInPandas(lambda batches: batches, frame.schema).toPandas()
        features = VectorAssembler(inputCols=["x"], outputCol="features").transform(frame)
        model = LogisticRegression(labelCol="y", maxIter=5).fit(features)
        model.write().overwrite().save(f"{folder}/model")
        frame.groupBy("y").count().collect()
    spark.stop()


if __name__ == "__main__":
    sys.exit(main())
