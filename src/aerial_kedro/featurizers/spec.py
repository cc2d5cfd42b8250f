"""What a featurizer needs besides its ONNX graph: input geometry, normalisation, output names."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class FeaturizerSpec:
    """Describes an ONNX featurizer so it can be run anywhere from (onnx bytes, spec).

    Pixels are RGB in 0..255; the network input is ``(pixel - mean) / std`` per channel,
    laid out NCHW float32 at ``input_size`` x ``input_size``.
    """

    name: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    feature_dim: int
    input_name: str = "image"
    feature_output: str = "features"
    logits_output: str | None = "logits"
    onnx_sha256: str = ""
    source: str = ""
    source_sha256: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["mean"] = list(self.mean)
        data["std"] = list(self.std)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> FeaturizerSpec:
        values = dict(data)
        values["mean"] = tuple(float(v) for v in values["mean"])
        values["std"] = tuple(float(v) for v in values["std"])
        return cls(**values)


def sha256_hex(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()
