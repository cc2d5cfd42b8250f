import subprocess
import sys

import pytest
from conftest import PROJECT_ROOT, SAMPLE_TILES

from aerial_kedro.validation import ParameterError, validate_run


def _params(**overrides):
    params = {
        "featurizer": "efficientnet_lite0",
        "tiles_dir": str(SAMPLE_TILES),
        "ingestion": {"sample_frac": 1.0, "test_fraction": 0.2},
        "featurization": {"onnx_file": {"path": None}},
        "logistic_regression": {"classifier": {"type": "logistic_regression"}},
        "random_forest": {"classifier": {"type": "random_forest"}},
    }
    params.update(overrides)
    return params


def test_good_parameters_pass():
    validate_run(_params(), {"raw_tiles"})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"featurizer": "resnet"}, "featurizer: 'resnet' is not allowed; allowed values: efficientnet_lite0"),
        ({"ingestion": {"sample_frac": 0, "test_fraction": 0.2}}, "ingestion.sample_frac: 0 is outside \\(0, 1\\]"),
        ({"ingestion": {"sample_frac": 1.5, "test_fraction": 0.2}}, "ingestion.sample_frac: 1.5 is outside"),
        ({"ingestion": {"sample_frac": 1, "test_fraction": 1}}, "ingestion.test_fraction: 1 is outside \\(0, 1\\)"),
        ({"random_forest": {"classifier": {"type": "xgboost"}}}, "random_forest.classifier.type: 'xgboost' is not allowed"),
        ({"tiles_dir": "/nonexistent/tiles"}, "tiles_dir: '/nonexistent/tiles' is not a folder"),
        ({"featurizer": "onnx_file"}, "featurization.onnx_file.path must name an .onnx file"),
    ],
)
def test_bad_parameters_name_the_key(overrides, message):
    with pytest.raises(ParameterError, match=message):
        validate_run(_params(**overrides), {"raw_tiles"})


def test_tiles_dir_is_only_checked_when_the_pipeline_reads_tiles():
    validate_run(_params(tiles_dir="/nonexistent"), {"features"})


def test_cli_fails_before_spark_starts():
    result = subprocess.run(
        [sys.executable, "-m", "kedro", "run", "--pipelines=train", "--params=featurizer=resnet"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "featurizer: 'resnet' is not allowed; allowed values:" in output
    assert "Spark 3." not in output  # the session was never started
