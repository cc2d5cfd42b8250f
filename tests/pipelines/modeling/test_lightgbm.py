"""The `lightgbm` classifier type (SynapseML's LightGBMClassifier) in the namespaced model pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from blob.azurite import require
from conftest import JAR_CACHE, PROJECT_ROOT

from aerial_kedro.datasets import SparkMLModelDataset
from aerial_kedro.featurizers.synapseml import new_synapseml_stage
from aerial_kedro.models.namespaces import MODEL_NAMESPACES, SYNAPSEML_MODEL_NAMESPACES
from aerial_kedro.pipelines.evaluation.nodes import evaluate_predictions, predict_test_split
from aerial_kedro.pipelines.modeling.classifiers import CLASSIFIERS
from aerial_kedro.pipelines.modeling.nodes import train_classifier
from aerial_kedro.pipelines.modeling.pipeline import create_pipeline

SYNAPSEML_JARS = JAR_CACHE / "synapseml"


@pytest.fixture
def synapseml_jars() -> None:
    """Skip without SynapseML's jars (fail in CI, where set-up fetches them)."""
    require(SYNAPSEML_JARS, "bash scripts/fetch_synapseml_jars.sh")


LABELS = ["Forest", "Industrial", "SeaLake"]


def lightgbm_params() -> dict:
    parameters = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_modeling.yml").read_text())
    return parameters["lightgbm"]["classifier"]


@pytest.fixture(scope="module")
def features(spark):
    """Three separable Gaussian blobs in 8-d, as the featurization stage writes them."""
    rng = np.random.default_rng(1)
    rows = []
    for index, label in enumerate(LABELS):
        centre = np.zeros(8)
        centre[index] = 4.0
        for number in range(40):
            split = "test" if number < 10 else "train"
            rows.append((f"{label}/{number}", label, split, (centre + rng.normal(0, 0.5, 8)).tolist(), "f"))
    return spark.createDataFrame(rows, "tile_id string, label string, split string, features array<float>, featurizer string")


def small_lightgbm() -> dict:
    classifier = lightgbm_params()
    # 90 training rows: the project's leaf and bin settings are sized for thousands of tiles.
    classifier["hyperparameters"] = {**classifier["hyperparameters"], "numIterations": 20, "minDataInLeaf": 5, "featureFraction": 1.0}
    return classifier


def test_lightgbm_is_an_opt_in_namespace_with_a_parameter_block():
    assert "lightgbm" in CLASSIFIERS and lightgbm_params()["type"] == "lightgbm"
    assert "lightgbm" in SYNAPSEML_MODEL_NAMESPACES and "lightgbm" not in MODEL_NAMESPACES
    pipeline = create_pipeline(models=SYNAPSEML_MODEL_NAMESPACES)
    assert pipeline.all_outputs() == {"lightgbm.classifier_model"}
    assert "params:lightgbm.classifier" in pipeline.inputs()


def test_missing_jars_are_explained_in_one_line():
    def factory(**_):
        raise TypeError("'JavaPackage' object is not callable")

    with pytest.raises(RuntimeError, match=r"classifier type 'lightgbm' needs SynapseML: .*fetch_synapseml_jars\.sh"):
        new_synapseml_stage(factory, "classifier type 'lightgbm'")


def test_lightgbm_model_predicts_held_out_tiles_and_survives_save_and_load(synapseml_jars, features, tmp_path):
    model = train_classifier(features, "f", small_lightgbm(), seed=3)
    predictions = predict_test_split(model, features, "f")
    metrics, confusion, figure = evaluate_predictions(predictions, model, "f")
    figure.clf()
    assert confusion["classes"] == LABELS and metrics["classifier"] == "LightGBMClassificationModel"
    assert metrics["accuracy"] > 0.9
    dataset = SparkMLModelDataset(filepath=str(tmp_path / "lightgbm"))
    dataset.save(model)
    reloaded = predict_test_split(dataset.load(), features, "f")
    before = {row["tile_id"]: row["predicted_label"] for row in predictions.collect()}
    assert {row["tile_id"]: row["predicted_label"] for row in reloaded.collect()} == before


def test_lightgbm_is_seeded(synapseml_jars, features):
    def booster(seed: int) -> str:
        classifier = small_lightgbm()
        classifier["hyperparameters"] = {**classifier["hyperparameters"], "featureFraction": 0.5}
        return train_classifier(features, "f", classifier, seed=seed).stages[-2].getNativeModel()

    assert booster(5) == booster(5)
