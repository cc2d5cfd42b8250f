import pytest

from aerial_kedro.errors import ParameterError
from aerial_kedro.pipelines.featurization.settings import FeaturizationBlock, FeaturizationSettings

BLOCK = {
    "backend": "ort",
    "batch_size": 64,
    "threads_per_task": None,
    "partitions_per_core": 4,
    "options": {"input_size": 160, "pooled_stages": [4, 5, 6], "precision": "fp32"},
    "onnx_file": {"path": None},
}


def test_the_configured_block_is_read_as_given():
    settings = FeaturizationSettings.from_params("efficientnet_lite0", BLOCK)
    assert settings.featurizer == "efficientnet_lite0"
    assert settings.options == BLOCK["options"]
    assert FeaturizationBlock.from_params(BLOCK).partitions_per_core == 4


@pytest.mark.parametrize(
    ("featurizer", "changes", "message"),
    [
        ("resnet", {}, "featurizer: 'resnet' is not allowed; allowed values: efficientnet_lite0, "),
        ("efficientnet_lite0", {"backend": "tf"}, "featurization.backend: 'tf' is not allowed; allowed values: ort, synapseml"),
        ("efficientnet_lite0", {"batch_size": 0}, "featurization.batch_size: '0' is not an integer >= 1"),
        ("efficientnet_lite0", {"options": {"precision": "fp8"}}, "featurization.options.precision: 'fp8' is not allowed"),
        ("onnx_file", {}, "featurization.onnx_file.path must name an .onnx file when featurizer=onnx_file"),
    ],
)
def test_a_bad_value_is_one_line_naming_its_key(featurizer, changes, message):
    with pytest.raises(ParameterError) as error:
        FeaturizationSettings.from_params(featurizer, {**BLOCK, **changes})
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)
