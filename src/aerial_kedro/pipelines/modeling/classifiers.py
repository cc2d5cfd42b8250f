"""Classifier types a model namespace can use, and the Spark ML Pipeline built around each."""

from __future__ import annotations

import logging
from typing import Any

from pyspark.ml import Pipeline
from pyspark.ml.classification import (
    LogisticRegression,
    MultilayerPerceptronClassifier,
    NaiveBayes,
    RandomForestClassifier,
)
from pyspark.ml.feature import IndexToString, StandardScaler, StringIndexerModel

# Importing a SynapseML wrapper also teaches pyspark's ML reader to map saved
# com.microsoft.azure.synapse.ml stages to their Python classes: a PipelineModel holding a
# LightGBM stage loads wherever this module was imported (Kedro's hooks import it for every run).
from synapse.ml.lightgbm import LightGBMClassifier

from aerial_kedro.featurizers.synapseml import new_synapseml_stage
from aerial_kedro.models.features import FEATURES_COLUMN

CLASSIFIERS: dict[str, type] = {
    "logistic_regression": LogisticRegression,
    "random_forest": RandomForestClassifier,
    "multilayer_perceptron": MultilayerPerceptronClassifier,
    "naive_bayes": NaiveBayes,
    # SynapseML (JVM jars from scripts/fetch_synapseml_jars.sh on spark.jars; Spark 3.5).
    "lightgbm": LightGBMClassifier,
}
# Types whose estimator lives in SynapseML's jars rather than in Spark itself.
SYNAPSEML_CLASSIFIERS = frozenset({"lightgbm"})

logger = logging.getLogger(__name__)

LABEL_INDEX_COLUMN = "label_index"


WEIGHT_COLUMN = "weight"


def make_classifier(
    classifier: dict[str, Any], seed: int, feature_dim: int, num_classes: int, weighted: bool = False
) -> Any:
    """Instantiate the Spark ML estimator named by ``classifier['type']`` with its hyperparameters.

    ``weighted``: rows carry a ``weight`` column (reference chips up-weighted against tiles);
    estimators without a weight parameter (multilayer perceptron) train unweighted, logged.
    """
    estimator_class = CLASSIFIERS[classifier["type"]]
    hyperparameters = dict(classifier.get("hyperparameters") or {})
    if classifier["type"] == "multilayer_perceptron":
        hidden = list(hyperparameters.pop("hiddenLayers", [256]))
        hyperparameters["layers"] = [feature_dim, *hidden, num_classes]
    columns = {"featuresCol": _input_column(classifier), "labelCol": LABEL_INDEX_COLUMN, "predictionCol": "prediction_index"}
    if classifier["type"] in SYNAPSEML_CLASSIFIERS:
        what = f"classifier type '{classifier['type']}'"
        estimator = new_synapseml_stage(estimator_class, what, **columns, **hyperparameters)
    else:
        estimator = estimator_class(**columns, **hyperparameters)
    if estimator.hasParam("seed"):
        estimator.setSeed(int(seed))
    if weighted:
        if estimator.hasParam("weightCol"):
            estimator.set(estimator.getParam("weightCol"), WEIGHT_COLUMN)
        else:
            logger.warning("%s has no weightCol: training rows are not weighted", classifier["type"])
    return estimator


def _input_column(classifier: dict[str, Any]) -> str:
    return "scaled_features" if classifier.get("standardize") else FEATURES_COLUMN


def make_training_pipeline(
    classifier: dict[str, Any],
    seed: int,
    label_indexer: StringIndexerModel,
    feature_dim: int,
    weighted: bool = False,
) -> Pipeline:
    """label -> index, optional standardisation, classifier, predicted index -> ``predicted_label``."""
    stages: list[Any] = [label_indexer]
    if classifier.get("standardize"):
        stages.append(StandardScaler(inputCol=FEATURES_COLUMN, outputCol="scaled_features", withMean=True, withStd=True))
    stages.append(
        make_classifier(classifier, seed, feature_dim, len(label_indexer.labels), weighted)
    )
    stages.append(IndexToString(inputCol="prediction_index", outputCol="predicted_label", labels=label_indexer.labels))
    return Pipeline(stages=stages)
