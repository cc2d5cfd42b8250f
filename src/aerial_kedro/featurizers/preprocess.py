"""RGB tiles -> the network's input tensor: resize to the input size, normalise, NCHW float32."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from aerial_kedro.featurizers.spec import FeaturizerSpec


def resize_rgb(pixels: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of an ``H x W x 3`` uint8 array to ``size x size``.

    Resizing 64-px EuroSAT tiles up to the network's input size matters: features of
    un-resized tiles lose several points of accuracy.
    """
    if pixels.shape[0] == size and pixels.shape[1] == size:
        return pixels
    return np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR))


def to_network_input(tiles: Sequence[np.ndarray], spec: FeaturizerSpec) -> np.ndarray:
    """Stack tiles into ``N x 3 x S x S`` float32 normalised as ``(pixel - mean) / std``."""
    batch = np.stack([resize_rgb(tile, spec.input_size) for tile in tiles]).astype(np.float32)
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    batch = (batch - mean) / std
    return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))
