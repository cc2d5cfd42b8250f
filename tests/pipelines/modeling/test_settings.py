import pytest

from aerial_kedro.errors import ParameterError
from aerial_kedro.pipelines.modeling.classifiers import CLASSIFIERS
from aerial_kedro.pipelines.modeling.settings import ClassifierSettings


def test_every_known_classifier_type_is_accepted():
    for name in CLASSIFIERS:
        assert ClassifierSettings.from_params("m", {"type": name, "hyperparameters": {}}).type == name


@pytest.mark.parametrize("classifier", [{"type": "xgboost"}, {}, None])
def test_an_unknown_or_missing_type_names_the_namespace_key(classifier):
    with pytest.raises(ParameterError, match=r"^random_forest\.classifier\.type: '.*' is not allowed; allowed values: logistic_regression"):
        ClassifierSettings.from_params("random_forest", classifier)
