"""What a scored chip keeps beside its class, so that `change` needs no second read of the imagery.

* **colour cells** (:func:`colour_cells`): the chip's 8-bit RGB averaged over a 16 x 16 grid of
  cells (40 m cells for a 64-px chip at 10 m) and each cell's share of cloud-like pixels, 1,024
  bytes;
* **texture** (:func:`texture_features`): the featurizer's pooled stage statistics
  (EfficientNet-Lite's stage means and deviations; the whole vector for featurizers without
  stages), as float16.

Written by the scoring workers (:mod:`aerial_kedro.chips.inference`), read back by `change`
(:mod:`aerial_kedro.change.appearance`) and by `sample`'s training candidates. Numpy only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

CELLS = 16  # colour cells per chip side
CLOUDY_CELL = 0.5  # a cell with at least this share of cloud-like pixels is left out
# EfficientNet-Lite's head is 1280-d; the pooled stage statistics follow it (featurizers/).
EFFICIENTNET_HEAD_DIM = 1280


def _cell_means(values: np.ndarray, cells: int) -> np.ndarray:
    """``cells x cells`` means of an HW or HWC array (area averages when the size does not divide)."""
    height, width = values.shape[:2]
    if height % cells == 0 and width % cells == 0:
        shape = (cells, height // cells, cells, width // cells, *values.shape[2:])
        return values.reshape(shape).mean(axis=(1, 3))
    rows = np.linspace(0, height, cells + 1).round().astype(int)
    cols = np.linspace(0, width, cells + 1).round().astype(int)
    return np.array(
        [[values[r0:r1, c0:c1].mean(axis=(0, 1)) for c0, c1 in zip(cols[:-1], cols[1:], strict=True)]
         for r0, r1 in zip(rows[:-1], rows[1:], strict=True)]
    )  # fmt: skip


def colour_cells(pixels: np.ndarray, clouds: np.ndarray | None = None, cells: int = CELLS) -> bytes:
    """An HWC uint8 chip as ``cells x cells`` RGB means plus each cell's share of ``clouds``
    (an HW bool mask of cloud-like pixels; None = none), uint8 bytes, row-major, RGBC last."""
    rgb = _cell_means(pixels[..., :3].astype(np.float32), cells)
    cloud = (
        np.zeros((cells, cells), dtype=np.float32)
        if clouds is None
        else _cell_means(clouds.astype(np.float32), cells) * 255
    )
    stacked = np.concatenate([rgb, cloud[..., None]], axis=2)
    return np.rint(stacked).clip(0, 255).astype(np.uint8).tobytes()


def texture_slice(spec_name: str, spec_extra: Mapping[str, object]) -> slice:
    """The part of a featurizer's vector kept as texture: the stage statistics after
    EfficientNet-Lite's head when the spec pooled any, else the whole vector."""
    if spec_name.startswith("efficientnet_lite") and (
        spec_extra.get("pooled_stages") or spec_extra.get("std_stages")
    ):
        return slice(EFFICIENTNET_HEAD_DIM, None)
    return slice(None)


def texture_features(vector: np.ndarray, part: slice) -> bytes:
    """The texture part of one feature vector as float16 bytes."""
    return np.asarray(vector[part], dtype=np.float16).tobytes()


def decode_colour_cells(
    blobs: Sequence[bytes], cloudy_cell: float = CLOUDY_CELL
) -> tuple[np.ndarray, np.ndarray]:
    """``(rgb, cloudy)`` from :func:`colour_cells` bytes: ``(chips, cells * cells, 3)`` float64
    cell means and ``(chips, cells * cells)`` bool, the cells with at least ``cloudy_cell`` of
    their pixels cloud-like."""
    stacked = np.frombuffer(b"".join(blobs), dtype=np.uint8).astype(np.float64)
    cells = stacked.reshape(len(blobs), -1, 4)
    return cells[..., :3], cells[..., 3] >= cloudy_cell * 255


def decode_texture(blobs: Sequence[bytes]) -> np.ndarray:
    """``(chips, dims)`` float64 from :func:`texture_features` bytes."""
    stacked = np.frombuffer(b"".join(blobs), dtype=np.float16).astype(np.float64)
    return stacked.reshape(len(blobs), -1)
