"""The worker's linear head gives the JVM's probabilities and labels, read from the PipelineModel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import CZECH_PARTS

from aerial_kedro.featurizers.decode import decode_tile
from aerial_kedro.featurizers.runner import OnnxFeaturizer
from aerial_kedro.geo.chip_planning import plan_chips_from_paths
from aerial_kedro.geo.chip_reader import ChipReader
from aerial_kedro.geo.grid import ChipGrid
from aerial_kedro.models.contract import predictor
from aerial_kedro.models.features import with_feature_vector
from aerial_kedro.models.linear_head import head_of
from aerial_kedro.pipelines.modeling.nodes import train_classifier

# float64 throughout, summed in another order than the JVM's BLAS: agreement to rounding.
ABS_TOLERANCE_F64 = 1e-12


@pytest.fixture(scope="module")
def featurizer(efficientnet_lite0) -> OnnxFeaturizer:
    onnx_bytes, spec = efficientnet_lite0
    return OnnxFeaturizer(onnx_bytes, spec)


@pytest.fixture(scope="module")
def training_features(spark, sample_tiles, featurizer):
    """Real lite0 features of 4 sample tiles per class, 10 classes, as `train` reads them."""
    paths = [p for folder in sorted(sample_tiles.iterdir()) for p in sorted(folder.glob("*.jpg"))[:4]]
    vectors = featurizer.features([decode_tile(p.read_bytes()) for p in paths])
    rows = [(p.name, p.parent.name, "train", v.tolist(), "f") for p, v in zip(paths, vectors, strict=True)]
    schema = "tile_id string, label string, split string, features array<float>, featurizer string"
    return spark.createDataFrame(rows, schema)


@pytest.fixture(scope="module")
def chip_features(featurizer) -> np.ndarray:
    """Real lite0 features (float32) of 40 chips of the Czech scene: rows to classify."""
    chips, problems = plan_chips_from_paths([str(CZECH_PARTS[0])], ChipGrid(64, 10.0))
    assert not problems
    with ChipReader() as reader:
        pixels = [reader.read(chip) for chip in chips[:: max(1, len(chips) // 40)][:40]]
    return featurizer.features(pixels)


def jvm_outputs(spark, model, features: np.ndarray) -> pd.DataFrame:
    """The PipelineModel's own probability, index and label for each row, in row order."""
    frame = spark.createDataFrame(
        [(i, row.tolist()) for i, row in enumerate(features)], "i int, features array<float>"
    )
    out = predictor(model).transform(with_feature_vector(frame))
    rows = out.select("i", "probability", "prediction_index", "predicted_label").toPandas()
    return rows.sort_values("i").reset_index(drop=True)


LINEAR = {
    "multinomial, standardized (the project default)": (
        None, {"type": "logistic_regression", "standardize": True,
               "hyperparameters": {"maxIter": 60, "regParam": 0.001, "family": "multinomial"}},
    ),
    "multinomial, raw features": (
        None, {"type": "logistic_regression", "standardize": False,
               "hyperparameters": {"maxIter": 60, "regParam": 0.01}},
    ),
    "binomial, standardized": (
        ("Forest", "SeaLake"), {"type": "logistic_regression", "standardize": True,
                                "hyperparameters": {"maxIter": 60, "regParam": 0.01}},
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", LINEAR)
def test_worker_probabilities_equal_the_jvm(spark, training_features, chip_features, case):
    classes, classifier = LINEAR[case]
    rows = training_features
    if classes:
        rows = rows.where(rows["label"].isin(*classes))
    model = train_classifier(rows, "f", classifier, 7)
    choice = head_of(model)
    assert choice.in_worker, choice.reason
    head = choice.head
    assert head is not None and head.binomial == (classes is not None)

    ours = head.probabilities(chip_features)
    jvm = jvm_outputs(spark, model, chip_features)
    theirs = np.stack([v.toArray() for v in jvm["probability"]])
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=ABS_TOLERANCE_F64)
    # As the prediction rows keep them (float32), they are equal.
    np.testing.assert_array_equal(ours.astype(np.float32), theirs.astype(np.float32))
    predicted = head.predictions(ours)
    np.testing.assert_array_equal(predicted, jvm["prediction_index"].to_numpy().astype(int))
    assert [head.labels[i] for i in predicted] == jvm["predicted_label"].tolist()
    assert len(set(predicted)) > 1  # the rows are not all one class: the check has teeth


def test_random_forest_stays_in_the_jvm(training_features):
    classifier = {"type": "random_forest", "standardize": False, "hyperparameters": {"numTrees": 3}}
    choice = head_of(train_classifier(training_features, "f", classifier, 7))
    assert not choice.in_worker
    assert choice.reason == "RandomForestClassificationModel is not a linear model"


def test_multinomial_thresholds_stay_in_the_jvm(training_features):
    classifier = {"type": "logistic_regression", "standardize": True, "hyperparameters": {"maxIter": 5}}
    model = train_classifier(training_features, "f", classifier, 7)
    model.stages[-2].setThresholds([0.5] * 10)
    choice = head_of(model)
    assert not choice.in_worker and "thresholds" in choice.reason


def test_head_refuses_features_of_another_size(training_features):
    classifier = {"type": "logistic_regression", "standardize": False, "hyperparameters": {"maxIter": 5}}
    head = head_of(train_classifier(training_features, "f", classifier, 7)).head
    assert head is not None
    with pytest.raises(ValueError, match="the model takes 1280 per row"):
        head.probabilities(np.zeros((2, 1968), np.float32))
