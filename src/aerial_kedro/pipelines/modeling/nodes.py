"""Train one classifier on the training split of one featurizer's features."""

from __future__ import annotations

import logging
import time

from pyspark.ml import PipelineModel
from pyspark.ml.feature import StringIndexer
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from aerial_kedro.models.features import select_split
from aerial_kedro.pipelines.modeling.classifiers import (
    LABEL_INDEX_COLUMN,
    WEIGHT_COLUMN,
    make_training_pipeline,
)

logger = logging.getLogger(__name__)


def train_classifier(features: DataFrame, featurizer: str, classifier: dict, seed: int) -> PipelineModel:
    """Fit the namespace's classifier; the returned PipelineModel maps features to ``predicted_label``."""
    train = select_split(features, featurizer, "train").cache()
    first = train.select("features").first()
    if first is None:
        train.unpersist()
        raise ValueError(f"No training features for featurizer '{featurizer}': run the featurization pipeline first")
    feature_dim = len(first["features"])
    label_indexer = StringIndexer(
        inputCol="label", outputCol=LABEL_INDEX_COLUMN, stringOrderType="alphabetAsc"
    ).fit(train)
    weighted = WEIGHT_COLUMN in train.columns and train.where(F.col(WEIGHT_COLUMN) != 1.0).count() > 0
    pipeline = make_training_pipeline(classifier, seed, label_indexer, feature_dim, weighted)
    started = time.perf_counter()
    model = pipeline.fit(train)
    logger.info(
        "Trained %s on %d tiles x %d features, %d classes in %.1f s",
        classifier["type"], train.count(), feature_dim, len(label_indexer.labels), time.perf_counter() - started,
    )
    train.unpersist()
    return model
