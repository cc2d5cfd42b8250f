"""The trained model's layout, in one place: what `train` writes and evaluation and scoring read.

A trained model (:func:`aerial_kedro.pipelines.modeling.classifiers.make_training_pipeline`,
fitted) is a Spark ML ``PipelineModel`` of these stages:

0. ``StringIndexerModel`` - ``label`` -> ``label_index``; its labels are the class order of every
   probability vector the model outputs;
1. ``StandardScalerModel`` - only with ``classifier.standardize``;
-2. the classifier - ``features`` (or ``scaled_features``) -> ``probability``, ``prediction_index``;
-1. ``IndexToString`` - ``prediction_index`` -> ``predicted_label``.
"""

from __future__ import annotations

from pyspark.ml import PipelineModel
from pyspark.ml.feature import StringIndexerModel

LABEL_INDEXER_STAGE = 0
CLASSIFIER_STAGE = -2


def class_names(model: PipelineModel) -> list[str]:
    """Class names in the model's label-index order (the order of its probability vectors)."""
    indexer = model.stages[LABEL_INDEXER_STAGE]
    if not isinstance(indexer, StringIndexerModel):
        raise TypeError(
            f"stage {LABEL_INDEXER_STAGE} of the model is a {type(indexer).__name__}, "
            "not the StringIndexerModel naming its classes"
        )
    return list(indexer.labels)


def classifier_name(model: PipelineModel) -> str:
    """The fitted classifier's type, e.g. ``LogisticRegressionModel``."""
    return type(model.stages[CLASSIFIER_STAGE]).__name__


def predictor(model: PipelineModel) -> PipelineModel:
    """The model without its label indexer: rows to classify have no ``label`` (applying the
    indexer to them only warns that the column does not exist)."""
    return PipelineModel(stages=model.stages[LABEL_INDEXER_STAGE + 1 :])
