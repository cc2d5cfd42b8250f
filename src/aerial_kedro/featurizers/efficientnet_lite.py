"""EfficientNet-Lite featurizers as ONNX graphs, built from the official weights, no torch.

:func:`build_efficientnet_lite` puts the parts together: the variant's pinned ImageNet weights
(:mod:`~aerial_kedro.featurizers.efficientnet_weights`, read by
:mod:`~aerial_kedro.featurizers.torch_legacy`), the ONNX graph
(:mod:`~aerial_kedro.featurizers.efficientnet_graph`), the ``featurization.options``
(:mod:`~aerial_kedro.featurizers.options`) and, for int8, the quantisation
(:mod:`~aerial_kedro.featurizers.quantize`); then it writes the spec that says what was built.
"""

from __future__ import annotations

from typing import Any

from aerial_kedro.featurizers.efficientnet_graph import (
    FEATURE_DIM,
    FEATURES_OUTPUT,
    INPUT_NAME,
    LOGITS_OUTPUT,
    MEAN,
    NUM_CLASSES,
    OPSET,
    STD,
    build_onnx_model,
)
from aerial_kedro.featurizers.efficientnet_weights import get_variant, read_verified_weights
from aerial_kedro.featurizers.options import FeaturizerOptions, parse_options
from aerial_kedro.featurizers.quantize import QUANTIZATION, calibration_set, quantize_int8
from aerial_kedro.featurizers.spec import FeaturizerSpec, sha256_hex
from aerial_kedro.featurizers.torch_legacy import parse_legacy_torch_file


def build_efficientnet_lite(
    name: str, options: FeaturizerOptions | dict[str, Any] | None = None
) -> tuple[bytes, FeaturizerSpec]:
    """Serialized ONNX model of variant ``name`` and its FeaturizerSpec (deterministic bytes).

    ``options`` (see :class:`FeaturizerOptions`) change the input size, append pooled stage
    outputs to the features, add flip TTA or quantize to int8; with none, the model is the
    plain ImageNet network at its native size, byte for byte as before the options existed.
    Every non-default option is recorded in ``spec.extra`` so the spec alone says what was built.
    """
    variant = get_variant(name)
    opts = options if isinstance(options, FeaturizerOptions) else parse_options(options)
    input_size = opts.input_size or variant.input_size
    payload = read_verified_weights(name)
    source_sha256 = sha256_hex(payload)
    doc = f"{name} ImageNet classifier from {variant.source} (sha256 {source_sha256})"
    sd = parse_legacy_torch_file(payload)
    model = build_onnx_model(sd, input_size, doc, opts.pooled_stages, opts.tta, opts.std_stages)
    feature_dim = model.graph.output[0].type.tensor_type.shape.dim[1].dim_value
    extra: dict[str, Any] = {"license": "Apache-2.0", "opset": OPSET, "num_classes": NUM_CLASSES}
    if opts.pooled_stages:
        extra["pooled_stages"] = list(opts.pooled_stages)
    if opts.std_stages:
        extra["std_stages"] = list(opts.std_stages)
    if opts.tta:
        extra["tta"] = "fliplr"
    if opts.input_size and opts.input_size != variant.input_size:
        extra["native_input_size"] = variant.input_size
    if opts.precision == "int8":
        calibration = calibration_set(opts.calibration)
        network = FeaturizerSpec(name, input_size, MEAN, STD, FEATURE_DIM, input_name=INPUT_NAME)
        model = quantize_int8(model, calibration, network)
        extra["precision"] = "int8"
        extra["quantization"] = QUANTIZATION
        extra["calibration"] = calibration.to_dict()
    onnx_bytes = model.SerializeToString()
    spec = FeaturizerSpec(
        name=name,
        input_size=input_size,
        mean=MEAN,
        std=STD,
        feature_dim=int(feature_dim),
        input_name=INPUT_NAME,
        feature_output=FEATURES_OUTPUT,
        logits_output=LOGITS_OUTPUT,
        onnx_sha256=sha256_hex(onnx_bytes),
        source=variant.source,
        source_sha256=source_sha256,
        extra=extra,
    )
    return onnx_bytes, spec
