"""EfficientNet-Lite featurizer options: input size, pooled stages, flip TTA, int8 (real weights)."""

from __future__ import annotations

import functools

import numpy as np
import onnx
import onnxruntime as ort
from conftest import SAMPLE_TILES

from aerial_kedro.featurizers.decode import decode_tile
from aerial_kedro.featurizers.efficientnet_lite import build_efficientnet_lite
from aerial_kedro.featurizers.registry import build_featurizer
from aerial_kedro.featurizers.runner import OnnxFeaturizer
from aerial_kedro.featurizers.spec import FeaturizerSpec, sha256_hex
from aerial_kedro.pipelines.featurization.nodes import export_featurizer

LITE0 = "efficientnet_lite0"
# Small, so that an int8 build (calibration included) takes seconds.
INT8 = {
    "input_size": 96,
    "pooled_stages": [4, 5, 6],
    "precision": "int8",
    "calibration": {"tiles_dir": str(SAMPLE_TILES), "seed": 3, "count": 16},
}


@functools.cache
def _built(**options) -> tuple[bytes, FeaturizerSpec]:
    return build_featurizer(LITE0, options={k: _unfreeze(v) for k, v in options.items()})


def _unfreeze(value):
    return list(value) if isinstance(value, tuple) else value


def _tiles(count: int = 6) -> list[np.ndarray]:
    paths = [sorted((SAMPLE_TILES / c).glob("*.jpg"))[0] for c in ("Forest", "River", "Industrial")]
    paths += [sorted((SAMPLE_TILES / c).glob("*.jpg"))[1] for c in ("Pasture", "SeaLake", "Highway")]
    return [decode_tile(p.read_bytes()) for p in paths[:count]]


def test_no_options_is_byte_identical_to_the_plain_build() -> None:
    plain_bytes, plain_spec = build_efficientnet_lite(LITE0)
    for empty in (None, {}, {"input_size": None, "pooled_stages": [], "precision": "fp32"}):
        payload, spec = build_featurizer(LITE0, options=empty)
        assert payload == plain_bytes and spec == plain_spec


def test_pooled_stages_append_their_pooled_outputs_to_the_head() -> None:
    head_bytes, head_spec = _built()
    payload, spec = _built(pooled_stages=(4, 5, 6))
    assert spec.feature_dim == 1280 + 80 + 112 + 192 == 1664
    assert spec.extra["pooled_stages"] == [4, 5, 6]
    tiles = _tiles()
    features = OnnxFeaturizer(payload, spec).features(tiles)
    head = OnnxFeaturizer(head_bytes, head_spec).features(tiles)
    assert features.shape == (6, 1664)
    np.testing.assert_allclose(features[:, :1280], head, rtol=1e-5, atol=1e-5)
    stages = features[:, 1280:]
    assert (stages != 0).mean() > 0.5 and not np.allclose(stages[0], stages[1])


def test_std_stages_append_the_spread_of_each_channel_over_positions() -> None:
    payload, spec = _built(input_size=128, pooled_stages=(4, 5, 6), std_stages=(5, 6))
    assert spec.feature_dim == 1664 + 112 + 192 and spec.extra["std_stages"] == [5, 6]
    # Expose the stage outputs the deviations are taken of, and take them with numpy.
    model = onnx.load_from_string(payload)
    maps = [n.input[0] for n in model.graph.node if n.name in ("stage5.std.sq", "stage6.std.sq")]
    model.graph.output.extend(onnx.helper.make_empty_tensor_value_info(name) for name in maps)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    batch = np.stack([enl_input(tile, spec) for tile in _tiles()])
    features, stage5, stage6 = session.run(["features", *maps], {spec.input_name: batch})
    expected = np.hstack([stage5.std(axis=(2, 3)), stage6.std(axis=(2, 3))])
    np.testing.assert_allclose(features[:, 1664:], expected, rtol=1e-3, atol=1e-4)
    assert (expected > 0.01).mean() > 0.5  # real texture, not a constant
    mean_only_bytes, mean_only_spec = _built(input_size=128, pooled_stages=(4, 5, 6))
    mean_only = OnnxFeaturizer(mean_only_bytes, mean_only_spec).features(_tiles())
    np.testing.assert_allclose(features[:, :1664], mean_only, rtol=1e-5, atol=1e-5)


def enl_input(tile: np.ndarray, spec: FeaturizerSpec) -> np.ndarray:
    from aerial_kedro.featurizers.preprocess import to_network_input

    return to_network_input([tile], spec)[0]


def test_input_size_changes_the_graph_and_is_recorded() -> None:
    payload, spec = _built(input_size=128)
    assert spec.input_size == 128 and spec.extra["native_input_size"] == 224
    model = onnx.load_from_string(payload)
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]]
    assert dims == [3, 128, 128]
    assert OnnxFeaturizer(payload, spec).features(_tiles(2)).shape == (2, 1280)


def test_tta_is_the_mean_of_the_tile_and_its_mirror() -> None:
    plain_bytes, plain_spec = _built(input_size=128, pooled_stages=(5,))
    tta_bytes, tta_spec = _built(input_size=128, pooled_stages=(5,), tta=True)
    assert tta_spec.extra["tta"] == "fliplr" and tta_spec.feature_dim == plain_spec.feature_dim
    tiles = _tiles()
    mirrored = [np.ascontiguousarray(t[:, ::-1]) for t in tiles]
    plain = OnnxFeaturizer(plain_bytes, plain_spec)
    expected = (plain.features(tiles) + plain.features(mirrored)) / 2
    got = OnnxFeaturizer(tta_bytes, tta_spec).features(tiles)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    # A mirrored tile gets the same TTA features: flip invariance is what TTA buys.
    np.testing.assert_allclose(
        OnnxFeaturizer(tta_bytes, tta_spec).features(mirrored), got, rtol=1e-4, atol=1e-5
    )
    assert not np.allclose(plain.features(tiles), got, atol=1e-3)


def test_int8_build_is_deterministic_quantized_and_close_to_fp32() -> None:
    payload, spec = build_featurizer(LITE0, options=INT8)
    again, spec_again = build_featurizer(LITE0, options=INT8)
    assert payload == again and spec == spec_again
    assert spec.onnx_sha256 == sha256_hex(payload)
    ops = {node.op_type for node in onnx.load_from_string(payload).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    calibration = spec.extra["calibration"]
    assert calibration["count"] == 16 and len(calibration["files"]) == 16
    assert calibration["seed"] == 3 and calibration["tiles_dir"] == str(SAMPLE_TILES)
    contents = [(SAMPLE_TILES / f).read_bytes() for f in calibration["files"]]
    lines = [f"{f}\t{sha256_hex(c)}" for f, c in zip(calibration["files"], contents, strict=True)]
    assert calibration["sha256"] == sha256_hex("\n".join(lines).encode())
    assert spec.extra["precision"] == "int8" and spec.extra["quantization"]["per_channel"]
    fp32_bytes, fp32_spec = _built(input_size=96, pooled_stages=(4, 5, 6))
    tiles = _tiles()
    int8 = OnnxFeaturizer(payload, spec).features(tiles)
    fp32 = OnnxFeaturizer(fp32_bytes, fp32_spec).features(tiles)
    for a, b in zip(int8, fp32, strict=True):
        assert np.corrcoef(a, b)[0, 1] > 0.9


def test_export_featurizer_records_every_option_in_the_spec() -> None:
    options = {"input_size": 128, "pooled_stages": [6], "tta": True}
    payload, spec_dict = export_featurizer(LITE0, {"options": options})
    spec = FeaturizerSpec.from_dict(spec_dict)
    assert (spec.input_size, spec.feature_dim) == (128, 1280 + 192)
    assert spec.extra["pooled_stages"] == [6] and spec.extra["tta"] == "fliplr"
    # Scoring rebuilds nothing: a session from the stored bytes + spec gives the same features.
    session = ort.InferenceSession(payload, providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[2:] == [128, 128]


def test_options_do_not_reach_fixed_featurizers() -> None:
    payload, spec_dict = export_featurizer("squeezenet1_1", {"options": {"input_size": 128}})
    assert spec_dict["input_size"] == 224 and spec_dict["feature_dim"] == 512
