import numpy as np
import pytest

from aerial_kedro.featurizers.decode import decode_tile
from aerial_kedro.featurizers.registry import FEATURIZERS, build_featurizer
from aerial_kedro.featurizers.runner import OnnxFeaturizer


def test_unknown_featurizer_names_the_allowed_values():
    with pytest.raises(ValueError, match="featurizer: unknown value 'resnet50'; allowed: efficientnet_lite0"):
        build_featurizer("resnet50")
    assert set(FEATURIZERS) >= {"efficientnet_lite0", "efficientnet_lite2", "squeezenet1_1", "onnx_file"}


def test_onnx_file_featurizer_matches_the_builtin(tmp_path, sample_tiles):
    builtin_bytes, builtin_spec = build_featurizer("squeezenet1_1")
    path = tmp_path / "my_model.onnx"
    path.write_bytes(builtin_bytes)
    options = {
        "name": "my_model",
        "path": str(path),
        "input_size": builtin_spec.input_size,
        "mean": list(builtin_spec.mean),
        "std": list(builtin_spec.std),
        "input_name": "image",
        "feature_output": "features",
    }
    payload, spec = build_featurizer("onnx_file", options)
    assert spec.name == "my_model" and spec.feature_dim == 512
    tiles = [decode_tile(p.read_bytes()) for p in sorted((sample_tiles / "Pasture").glob("*.jpg"))[:4]]
    ours = OnnxFeaturizer(payload, spec).features(tiles)
    reference = OnnxFeaturizer(builtin_bytes, builtin_spec).features(tiles)
    np.testing.assert_allclose(ours, reference, rtol=1e-6)


def test_onnx_file_with_wrong_output_name_is_explained(tmp_path):
    payload, spec = build_featurizer("squeezenet1_1")
    path = tmp_path / "m.onnx"
    path.write_bytes(payload)
    options = {"path": str(path), "input_size": 224, "mean": [0, 0, 0], "std": [1, 1, 1],
               "input_name": "image", "feature_output": "pool5"}
    with pytest.raises(ValueError, match="feature_output 'pool5' not in model outputs"):
        build_featurizer("onnx_file", options)


def test_onnx_file_missing_options_are_named():
    with pytest.raises(ValueError, match="missing option\\(s\\) path"):
        build_featurizer("onnx_file", {"input_size": 224, "mean": [0, 0, 0], "std": [1, 1, 1],
                                       "input_name": "image", "feature_output": "features"})
