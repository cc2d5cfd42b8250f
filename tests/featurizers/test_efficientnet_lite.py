"""EfficientNet-Lite ONNX featurizers built from the real ImageNet weights (no mocks)."""

from __future__ import annotations

import functools
import importlib.metadata

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image
from skimage import data as skdata

from aerial_kedro.featurizers import efficientnet_lite as enl
from aerial_kedro.featurizers.efficientnet_graph import OPSET
from aerial_kedro.featurizers.efficientnet_weights import EFFICIENTNET_LITE_VARIANTS, WEIGHTS_SHA256
from aerial_kedro.featurizers.spec import FeaturizerSpec, sha256_hex

REQUIRED = ("efficientnet_lite0", "efficientnet_lite2")
TABBY, TIGER_CAT, EGYPTIAN_CAT = 281, 282, 285
COFFEE_MUG, ESPRESSO, CUP = 504, 967, 968
CAT_CLASSES = {TABBY, TIGER_CAT, EGYPTIAN_CAT}
COFFEE_CLASSES = {COFFEE_MUG, ESPRESSO, CUP}


def _installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(EFFICIENTNET_LITE_VARIANTS[name].distribution)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


VARIANTS = [
    pytest.param(
        name,
        marks=pytest.mark.skipif(
            name not in REQUIRED and not _installed(name), reason=f"{name} weights not installed"
        ),
    )
    for name in sorted(EFFICIENTNET_LITE_VARIANTS)
]


@functools.cache
def _built(name: str) -> tuple[bytes, FeaturizerSpec]:
    return enl.build_efficientnet_lite(name)


@functools.cache
def _session(name: str) -> ort.InferenceSession:
    return ort.InferenceSession(_built(name)[0], providers=["CPUExecutionProvider"])


def _preprocess(image: np.ndarray, spec: FeaturizerSpec) -> np.ndarray:
    size = (spec.input_size, spec.input_size)
    pixels = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR), dtype=np.float32)
    normalised = (pixels - np.float32(spec.mean)) / np.float32(spec.std)
    return normalised.transpose(2, 0, 1)[None]


def _probabilities(name: str, image: np.ndarray) -> np.ndarray:
    spec = _built(name)[1]
    (logits,) = _session(name).run(
        [spec.logits_output], {spec.input_name: _preprocess(image, spec)}
    )
    z = logits[0] - logits[0].max()
    return np.exp(z) / np.exp(z).sum()


@pytest.mark.parametrize("name", VARIANTS)
def test_build_is_deterministic_and_valid(name: str) -> None:
    first, spec = _built(name)
    second, spec2 = enl.build_efficientnet_lite(name)
    assert first == second
    assert spec == spec2
    assert spec.onnx_sha256 == sha256_hex(first)
    model = onnx.load_from_string(first)
    onnx.checker.check_model(model)
    assert model.opset_import[0].version == OPSET
    assert not {n.op_type for n in model.graph.node} & {"BatchNormalization", "Sigmoid", "Mul"}


@pytest.mark.parametrize("name", VARIANTS)
def test_spec(name: str) -> None:
    spec = _built(name)[1]
    variant = EFFICIENTNET_LITE_VARIANTS[name]
    assert spec.name == name
    assert spec.input_size == {"efficientnet_lite0": 224, "efficientnet_lite1": 240}.get(name, 260)
    assert (spec.mean, spec.std) == ((127.0,) * 3, (128.0,) * 3)
    assert spec.feature_dim == 1280
    assert (spec.input_name, spec.feature_output, spec.logits_output) == (
        "image",
        "features",
        "logits",
    )
    assert spec.source == f"{variant.distribution}==0.1.0:{variant.weights_file}"
    assert spec.source_sha256 == WEIGHTS_SHA256[variant.weights_file]
    assert FeaturizerSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize("name", VARIANTS)
def test_output_shapes_dynamic_batch(name: str) -> None:
    spec = _built(name)[1]
    batch = np.concatenate(
        [_preprocess(skdata.chelsea(), spec), _preprocess(skdata.coffee(), spec)]
    )
    batch = np.concatenate([batch, batch[:1]])
    features, logits = _session(name).run(["features", "logits"], {"image": batch})
    assert features.shape == (3, 1280) and features.dtype == np.float32
    assert logits.shape == (3, 1000)
    assert features.min() >= 0.0 and features.max() <= 6.0  # pooled ReLU6
    np.testing.assert_allclose(features[0], features[2], rtol=0, atol=1e-5)
    assert not np.allclose(features[0], features[1], atol=1e-2)


@pytest.mark.parametrize("name", VARIANTS)
def test_imagenet_top1_chelsea_is_a_cat(name: str) -> None:
    probs = _probabilities(name, skdata.chelsea())
    assert int(np.argmax(probs)) in CAT_CLASSES
    assert probs[sorted(CAT_CLASSES)].sum() > 0.5


@pytest.mark.parametrize("name", VARIANTS)
def test_imagenet_top1_coffee_is_coffee(name: str) -> None:
    probs = _probabilities(name, skdata.coffee())
    assert int(np.argmax(probs)) in COFFEE_CLASSES
    assert probs[sorted(COFFEE_CLASSES)].sum() > 0.5
