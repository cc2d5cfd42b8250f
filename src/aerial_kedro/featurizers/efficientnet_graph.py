"""The EfficientNet-Lite network as an ONNX graph, rebuilt from a numpy state dict with ``onnx.helper``.

Batch-norm is folded into the convolutions, ReLU6 written as ``Clip(0, 6)``, TF "same" padding
as explicit (asymmetric for stride 2) pads for the fixed input size. The block structure comes
from the state dict itself (kernel sizes, channels), the stage strides from the architecture.
Optional extras live in the graph too, so every runner reproduces them from the ONNX alone:
pooled and standard-deviation stage outputs appended to the features, and flip TTA.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8
# The models have always been produced under this name (it is part of the ONNX bytes: keep it).
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
class _Block:
    index: int
    in_ch: int
    mid_ch: int
    out_ch: int
    kernel: int
    stride: int
    expand: bool
    stage: int = 0  # 0-based stage index

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
        blocks.append(_Block(i, in_ch, mid_ch, out_ch, kernel, stride, expand, stage))
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

    def head(self, x: str, size: int, features: str, logits: str) -> str:
        """Head conv + pooled head features (``features``) and the ImageNet ``logits``."""
        h, _ = self.conv_bn(x, "head", "_conv_head", "_bn1", size)
        h = self.relu6(h)
        self.nodes.append(helper.make_node("GlobalAveragePool", [h], ["pool"], name="pool"))
        self.nodes.append(helper.make_node("Flatten", ["pool"], [features], name="flatten", axis=1))
        w = self.add_init("fc.weight", self.take("_fc.weight"))
        b = self.add_init("fc.bias", self.take("_fc.bias"))
        self.nodes.append(helper.make_node("Gemm", [features, w, b], [logits], name="fc", transB=1))
        return features

    def pool_stage(self, x: str, stage: int) -> str:
        """Global-average-pooled output of 1-based stage ``stage``, ``N x C``."""
        name = f"stage{stage}.pool"
        self.nodes.append(helper.make_node("GlobalAveragePool", [x], [name], name=name))
        self.nodes.append(
            helper.make_node("Flatten", [name], [f"{name}.flat"], name=f"{name}.flat", axis=1)
        )
        return f"{name}.flat"

    def std_stage(self, x: str, stage: int) -> str:
        """Per-channel standard deviation over the positions of stage ``stage``'s output, ``N x C``:
        ``sqrt(max(E[x^2] - E[x]^2, 0))`` from two global average pools."""
        name = f"stage{stage}.std"
        ops = [
            ("Mul", [x, x], "sq"),
            ("GlobalAveragePool", [f"{name}.sq"], "mean_sq"),
            ("GlobalAveragePool", [x], "mean"),
            ("Mul", [f"{name}.mean", f"{name}.mean"], "sq_mean"),
            ("Sub", [f"{name}.mean_sq", f"{name}.sq_mean"], "var"),
            ("Relu", [f"{name}.var"], "var_pos"),  # rounding can leave a tiny negative variance
            ("Sqrt", [f"{name}.var_pos"], "sd"),
        ]
        for op, inputs, out in ops:
            self.nodes.append(helper.make_node(op, inputs, [f"{name}.{out}"], name=f"{name}.{out}"))
        self.nodes.append(
            helper.make_node("Flatten", [f"{name}.sd"], [f"{name}.flat"], name=f"{name}.flat", axis=1)
        )
        return f"{name}.flat"

    def flip_concat(self, x: str) -> str:
        """``[x; fliplr(x)]`` along the batch axis: one run of the network sees both views."""
        for name, value in (
            ("tta.starts", [-1]),
            ("tta.ends", [np.iinfo(np.int64).min]),
            ("tta.axes", [3]),
            ("tta.steps", [-1]),
        ):
            self.initializers.append(numpy_helper.from_array(np.array(value, np.int64), name))
        self.nodes.append(
            helper.make_node(
                "Slice",
                [x, "tta.starts", "tta.ends", "tta.axes", "tta.steps"],
                ["tta.flipped"],
                name="tta.flip",
            )
        )
        self.nodes.append(
            helper.make_node("Concat", [x, "tta.flipped"], ["tta.both"], name="tta.concat", axis=0)
        )
        return "tta.both"

    def mean_of_views(self, x: str, dim: int, out: str) -> str:
        """``(x[:N] + x[N:]) / 2`` for ``x`` of shape ``2N x dim`` (the two TTA views)."""
        shape = f"{out}.views_shape"
        self.initializers.append(numpy_helper.from_array(np.array([2, -1, dim], np.int64), shape))
        self.nodes.append(
            helper.make_node("Reshape", [x, shape], [f"{out}.views"], name=f"{out}.views")
        )
        self.nodes.append(
            helper.make_node(
                "ReduceMean", [f"{out}.views"], [out], name=f"{out}.mean", axes=[0], keepdims=0
            )
        )
        return out


def build_onnx_model(
    sd: dict[str, np.ndarray],
    input_size: int,
    doc: str = "",
    pooled_stages: tuple[int, ...] = (),
    tta: bool = False,
    std_stages: tuple[int, ...] = (),
) -> onnx.ModelProto:
    """EfficientNet-Lite ONNX model (dynamic batch) from a numpy state dict.

    ``features`` is the pooled 1280-d head, followed by the global-average-pooled outputs of the
    1-based ``pooled_stages`` in ascending order, then the per-channel standard deviations of the
    ``std_stages`` outputs (their texture statistics are what land use is about: the mean says
    how much of a pattern a tile holds, the deviation how unevenly). ``tta`` feeds the image and its left-right flip through the network as one batch and
    averages both outputs, inside the graph, so every runner (onnxruntime in Spark workers,
    SynapseML's ONNXModel, scoring) reproduces it from the ONNX alone.
    """
    g = _GraphBuilder(sd)
    x = g.flip_concat(INPUT_NAME) if tta else INPUT_NAME
    h, size = g.conv_bn(x, "stem", "_conv_stem", "_bn0", input_size, stride=2)
    h = g.relu6(h)
    blocks = _block_specs(sd)
    stage_outputs: dict[int, str] = {}
    for block in blocks:
        h, size = g.mbconv(h, block, size)
        stage_outputs[block.stage + 1] = h
    raw = "_raw" if tta else ""
    head = g.head(h, size, FEATURES_OUTPUT + ("_head" if pooled_stages or std_stages else raw), LOGITS_OUTPUT + raw)
    feature_dim = FEATURE_DIM
    if pooled_stages or std_stages:
        pooled = [g.pool_stage(stage_outputs[stage], stage) for stage in sorted(pooled_stages)]
        pooled += [g.std_stage(stage_outputs[stage], stage) for stage in sorted(std_stages)]
        channels = stage_channels(sd)
        feature_dim += sum(channels[stage - 1] for stage in (*pooled_stages, *std_stages))
        g.nodes.append(
            helper.make_node(
                "Concat", [head, *pooled], [FEATURES_OUTPUT + raw], name="features.concat", axis=1
            )
        )
    if tta:
        g.mean_of_views(FEATURES_OUTPUT + raw, feature_dim, FEATURES_OUTPUT)
        g.mean_of_views(LOGITS_OUTPUT + raw, NUM_CLASSES, LOGITS_OUTPUT)
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
            _value_info(FEATURES_OUTPUT, ["batch", feature_dim]),
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


def stage_channels(sd: dict[str, np.ndarray]) -> list[int]:
    """Output channels of each of the seven stages (Lite0: 16, 24, 40, 80, 112, 192, 320)."""
    channels = [0] * NUM_STAGES
    for block in _block_specs(sd):
        channels[block.stage] = block.out_ch
    return channels


def _value_info(name: str, shape: list[int | str]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
