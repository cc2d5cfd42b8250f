"""Selecting one featurizer's split of the feature table, as Spark ML vectors."""

from __future__ import annotations

from pyspark.ml.functions import array_to_vector
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

# The assembled feature vector column every classifier reads.
FEATURES_COLUMN = "features_vector"


def select_split(features: DataFrame, featurizer: str, split: str) -> DataFrame:
    """Rows of ``features`` for one featurizer and split, with a ``features_vector`` column."""
    rows = features.where((F.col("featurizer") == featurizer) & (F.col("split") == split))
    return with_feature_vector(rows)


def with_feature_vector(rows: DataFrame) -> DataFrame:
    return rows.withColumn(FEATURES_COLUMN, array_to_vector(F.col("features")))
