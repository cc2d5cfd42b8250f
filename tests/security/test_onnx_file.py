"""Threat: a bring-your-own ONNX model that reads files it should not (issue 13, item 11).

``featurizer=onnx_file`` loads a model the user names. ONNX lets a tensor keep its data in a
separate file (``external_data``, a ``location`` path); onnxruntime, given the model as bytes as
every executor is, resolves that path against the *working directory*, so a model saying
``location: ../../etc/passwd`` turns any readable file into weights. What these tests prove: a
model with external data anywhere (initializer or node attribute) is refused with one line naming
the model and the tensor, before any session exists; an optional ``sha256`` pin refuses any other
file than the one the user vetted; a self-contained model still works. Real ONNX files, built with
onnx.helper and saved by onnx itself, real onnxruntime.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from aerial_kedro.featurizers.registry import build_featurizer
from aerial_kedro.featurizers.runner import OnnxFeaturizer

SIZE = 8


def tiny_model() -> onnx.ModelProto:
    """image [N,3,8,8] -> GlobalAveragePool -> Flatten -> MatMul W[3,4] -> features [N,4]."""
    weights = np.arange(12, dtype=np.float32).reshape(3, 4) / 10
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "W"], ["features"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", 4])],
        initializer=[numpy_helper.from_array(weights, "W")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def options(path: Path, **extra) -> dict:
    return {"name": "tiny", "path": str(path), "input_size": SIZE, "mean": [0, 0, 0],
            "std": [255, 255, 255], "input_name": "image", "feature_output": "features", **extra}


def test_self_contained_model_runs(tmp_path: Path) -> None:
    path = tmp_path / "tiny.onnx"
    onnx.save_model(tiny_model(), path)
    payload, spec = build_featurizer("onnx_file", options(path))
    assert spec.feature_dim == 4
    white = np.full((SIZE, SIZE, 3), 255, dtype=np.uint8)
    features = OnnxFeaturizer(payload, spec).features([white])
    np.testing.assert_allclose(features[0], np.arange(12).reshape(3, 4).sum(axis=0) / 10, rtol=1e-6)


def test_external_data_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    folder.mkdir()
    path = folder / "tiny.onnx"
    onnx.save_model(tiny_model(), path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="tiny.weights", size_threshold=0)
    assert (folder / "tiny.weights").is_file()  # onnx really wrote the tensor elsewhere
    with pytest.raises(ValueError) as excinfo:
        build_featurizer("onnx_file", options(path))
    message = str(excinfo.value)
    assert "\n" not in message
    assert str(path) in message and "'W'" in message and "'tiny.weights'" in message
    assert "external data" in message


def test_external_data_escaping_the_folder_is_refused_before_any_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit's case: a location relative to the working directory, outside the model folder."""
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.arange(12, dtype=np.float32).tobytes())
    model = tiny_model()
    tensor = model.graph.initializer[0]
    tensor.ClearField("float_data")
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "../secret.bin"), ("offset", "0"), ("length", "48")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    folder = tmp_path / "models"
    folder.mkdir()
    path = folder / "evil.onnx"
    path.write_bytes(model.SerializeToString())
    monkeypatch.chdir(folder)  # where onnxruntime would resolve ../secret.bin from bytes
    with pytest.raises(ValueError, match=r"keeps tensor 'W' in external data \('\.\./secret\.bin'\)"):
        build_featurizer("onnx_file", options(path))


def test_external_data_in_a_node_attribute_is_refused(tmp_path: Path) -> None:
    model = tiny_model()
    constant = numpy_helper.from_array(np.zeros((3, 4), np.float32), "W_const")
    constant.ClearField("raw_data")
    constant.data_location = TensorProto.EXTERNAL
    entry = constant.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    del model.graph.initializer[:]
    model.graph.node.insert(0, helper.make_node("Constant", [], ["W"], value=constant))
    path = tmp_path / "const.onnx"
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ValueError, match=r"'W_const' in external data \('/etc/passwd'\)"):
        build_featurizer("onnx_file", options(path))


def test_sha256_pin_accepts_the_vetted_file_and_refuses_another(tmp_path: Path) -> None:
    path = tmp_path / "tiny.onnx"
    onnx.save_model(tiny_model(), path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    payload, spec = build_featurizer("onnx_file", options(path, sha256=digest.upper()))
    assert spec.onnx_sha256 == digest
    wrong = "0" * 64
    with pytest.raises(ValueError) as excinfo:
        build_featurizer("onnx_file", options(path, sha256=wrong))
    message = str(excinfo.value)
    assert "\n" not in message
    assert f"sha256 mismatch for {path}: expected {wrong}, got {digest}" in message


def test_malformed_sha256_pin_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "tiny.onnx"
    onnx.save_model(tiny_model(), path)
    with pytest.raises(ValueError, match=r"^onnx_file\.sha256: 'abc' is not 64 hexadecimal"):
        build_featurizer("onnx_file", options(path, sha256="abc"))
