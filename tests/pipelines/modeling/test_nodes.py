import numpy as np
import pytest

from aerial_kedro.pipelines.evaluation.nodes import evaluate_predictions, predict_test_split
from aerial_kedro.pipelines.modeling.nodes import train_classifier

LABELS = ["Forest", "Industrial", "SeaLake"]


@pytest.fixture(scope="module")
def features(spark):
    """Three well-separated Gaussian blobs in 8-d, as the featurization stage would write them."""
    rng = np.random.default_rng(0)
    rows = []
    for index, label in enumerate(LABELS):
        centre = np.zeros(8)
        centre[index] = 4.0
        for number in range(40):
            vector = (centre + rng.normal(0, 0.5, 8)).astype(float).tolist()
            split = "test" if number < 10 else "train"
            rows.append((f"{label}/{number}", label, split, vector, "f"))
    rows.append(("Forest/other", "Forest", "train", [100.0] * 8, "another_featurizer"))
    return spark.createDataFrame(rows, "tile_id string, label string, split string, features array<float>, featurizer string")


@pytest.mark.parametrize(
    "classifier",
    [
        {"type": "logistic_regression", "standardize": True, "hyperparameters": {"maxIter": 50, "regParam": 0.01}},
        {"type": "random_forest", "standardize": False, "hyperparameters": {"numTrees": 20, "maxDepth": 5}},
        {"type": "multilayer_perceptron", "standardize": True, "hyperparameters": {"hiddenLayers": [16], "maxIter": 100}},
    ],
)
def test_trained_model_predicts_string_labels_on_held_out_tiles(features, classifier):
    model = train_classifier(features, "f", classifier, seed=3)
    predictions = predict_test_split(model, features, "f")
    assert predictions.count() == 30
    metrics, confusion, figure = evaluate_predictions(predictions, model, "f")
    assert confusion["classes"] == LABELS
    assert metrics["accuracy"] > 0.9
    assert set(r["predicted_label"] for r in predictions.collect()) <= set(LABELS)
    assert len(predictions.first()["probability"]) == 3
    figure.clf()


def test_random_forest_is_seeded(features):
    classifier = {"type": "random_forest", "hyperparameters": {"numTrees": 5, "maxDepth": 3, "subsamplingRate": 0.5}}
    def trees(seed):
        forest = train_classifier(features, "f", classifier, seed=seed).stages[-2]
        return [tree.toDebugString.split("\n", 1)[1] for tree in forest.trees]  # drop the uid line

    assert trees(11) == trees(11)
    assert trees(11) != trees(12)


def test_missing_featurizer_features_is_explained(features):
    with pytest.raises(ValueError, match="No training features for featurizer 'nope'"):
        train_classifier(features, "nope", {"type": "logistic_regression"}, seed=1)


def test_the_model_contract_names_classes_classifier_and_predicts_rows_without_labels(features):
    from pyspark.sql import functions as F

    from aerial_kedro.models.contract import (
        class_names,
        classifier_name,
        predictor,
    )
    from aerial_kedro.models.features import with_feature_vector

    classifier = {"type": "logistic_regression", "standardize": True, "hyperparameters": {"maxIter": 50}}
    model = train_classifier(features, "f", classifier, seed=3)
    assert class_names(model) == LABELS
    assert classifier_name(model) == "LogisticRegressionModel"
    unlabeled = with_feature_vector(features.where(F.col("featurizer") == "f").drop("label"))
    predicted = predictor(model).transform(unlabeled)
    assert "label_index" not in predicted.columns
    rows = predicted.select("tile_id", "predicted_label").collect()
    assert sum(r["tile_id"].split("/")[0] == r["predicted_label"] for r in rows) >= 0.9 * len(rows)
