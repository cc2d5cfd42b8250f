"""Change from what two dates' chips look like, each date standardised against its own scene.

A scored chip keeps two compact descriptors (:func:`colour_cells`, :func:`texture_features`),
written beside its prediction, so a completed ``score`` run is all ``change`` needs:

* **colour cells**: the chip's 8-bit RGB averaged over a 16 x 16 grid of cells (40 m cells for
  a 64-px chip at 10 m) and each cell's share of cloud-like pixels, 1,024 bytes;
* **texture**: the featurizer's pooled stage statistics (EfficientNet-Lite's stage means and
  deviations; the whole vector for featurizers without stages), as float16.

Comparing them (:func:`appearance_change`):

1. Each date is standardised over the chips *both* dates cover, clear on both (per band for
   the colour cells, per feature for the texture): the scene-wide shift of season, sun angle,
   haze and sensor calibration is removed, what differs locally stays.
2. ``colour_change`` = the ``colour_quantile`` quantile over the chip's cells of the cell's
   standardised colour difference (Euclidean over R, G, B): a chip changes when some of its
   cells change strongly, as OSCD's "10 % of the chip's pixels" does; a chip-wide mean would
   dilute a new block of houses into its fields. Cells half cloud-like or more on either date
   take no part (nor in the standardisation): a cloud over a twentieth of a chip would
   otherwise set its 95th-percentile cell.
3. ``texture_change`` = the root-mean-square standardised difference of the texture features.
4. ``change_score`` = the robust z (median, 1.4826 MAD over the scene's compared chips) of
   ``robust_z(colour_change) + texture_weight * robust_z(texture_change)``: how unusual the
   chip's change is among its own scene's chips, in robust standard deviations. A threshold on
   it means the same on every scene; a scene where nothing changed has few chips past it.

Measured (benchmarks/change_oscd.py, OSCD, a chip changed when >= 10 % of its pixels are): see
the README's change section. Pure numpy: no Spark, no Kedro.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

CELLS = 16  # colour cells per chip side
CLOUDY_CELL = 0.5  # a cell with at least this share of cloud-like pixels is left out
MAD_TO_SD = 1.4826  # MAD of a normal distribution x this = its standard deviation
# EfficientNet-Lite's head is 1280-d; the pooled stage statistics follow it (featurizers/).
EFFICIENTNET_HEAD_DIM = 1280


@dataclass(frozen=True)
class AppearanceCriteria:
    """How two dates' descriptors are compared (``change.appearance`` parameters)."""

    colour_quantile: float = 0.95
    texture_weight: float = 0.5
    threshold_z: float = 3.0


# --------------------------------------------------------------------------- descriptors


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


def decode_colour_cells(blobs: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """``(rgb, cloudy)`` from :func:`colour_cells` bytes: ``(chips, cells * cells, 3)`` float64
    cell means and ``(chips, cells * cells)`` bool, the cells at least half cloud-like."""
    stacked = np.frombuffer(b"".join(blobs), dtype=np.uint8).astype(np.float64)
    cells = stacked.reshape(len(blobs), -1, 4)
    return cells[..., :3], cells[..., 3] >= CLOUDY_CELL * 255


def decode_texture(blobs: Sequence[bytes]) -> np.ndarray:
    """``(chips, dims)`` float64 from :func:`texture_features` bytes."""
    stacked = np.frombuffer(b"".join(blobs), dtype=np.float16).astype(np.float64)
    return stacked.reshape(len(blobs), -1)


# --------------------------------------------------------------------------- scene statistics


@dataclass(frozen=True)
class Moments:
    """Count, sum and sum of squares per dimension: mergeable across Spark partitions."""

    count: float
    total: np.ndarray
    squares: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray) -> Moments:
        """Moments of ``(n, dims)`` values (rows are observations)."""
        return cls(float(len(values)), values.sum(axis=0), (values**2).sum(axis=0))

    def __add__(self, other: Moments) -> Moments:
        return Moments(
            self.count + other.count, self.total + other.total, self.squares + other.squares
        )

    def standardiser(self) -> tuple[np.ndarray, np.ndarray]:
        """``(mean, sd)``; a constant dimension gets sd 1 (it then never differs)."""
        if self.count < 2:
            raise ValueError("a scene needs at least 2 chips clear on both dates to compare")
        mean = self.total / self.count
        variance = np.maximum(self.squares / self.count - mean**2, 0.0)
        sd = np.sqrt(variance)
        return mean, np.where(sd > 1e-9, sd, 1.0)


@dataclass(frozen=True)
class SceneMoments:
    """Both dates' moments of both descriptors over the compared chips."""

    colour_before: Moments
    colour_after: Moments
    texture_before: Moments
    texture_after: Moments

    @classmethod
    def of(
        cls,
        colour_before: np.ndarray,
        colour_after: np.ndarray,
        texture_before: np.ndarray,
        texture_after: np.ndarray,
        cloudy: np.ndarray | None = None,
    ) -> SceneMoments:
        """Colour moments per band over the cells clear on both dates (``cloudy``: ``(chips,
        cells)`` bool, cloud-like on either date); texture moments per feature."""
        clear = slice(None) if cloudy is None else ~cloudy.reshape(-1)
        return cls(
            Moments.of(colour_before.reshape(-1, 3)[clear]),
            Moments.of(colour_after.reshape(-1, 3)[clear]),
            Moments.of(texture_before),
            Moments.of(texture_after),
        )

    def __add__(self, other: SceneMoments) -> SceneMoments:
        return SceneMoments(
            self.colour_before + other.colour_before,
            self.colour_after + other.colour_after,
            self.texture_before + other.texture_before,
            self.texture_after + other.texture_after,
        )


# --------------------------------------------------------------------------- per-chip change


def _standardised(values: np.ndarray, moments: Moments) -> np.ndarray:
    mean, sd = moments.standardiser()
    return (values - mean) / sd


def colour_change(
    before: np.ndarray,
    after: np.ndarray,
    moments: SceneMoments,
    quantile: float,
    cloudy: np.ndarray | None = None,
) -> np.ndarray:
    """Per chip: the ``quantile`` of its clear cells' standardised RGB difference (0 for a chip
    without a clear cell: no evidence of change)."""
    b = _standardised(before, moments.colour_before)
    a = _standardised(after, moments.colour_after)
    per_cell = np.sqrt(((a - b) ** 2).sum(axis=2))
    if cloudy is not None:
        per_cell = np.where(cloudy, np.nan, per_cell)
    out = np.zeros(len(per_cell))
    some = ~np.isnan(per_cell).all(axis=1)
    out[some] = np.nanquantile(per_cell[some], quantile, axis=1)
    return out


def texture_change(before: np.ndarray, after: np.ndarray, moments: SceneMoments) -> np.ndarray:
    """Per chip: root-mean-square standardised difference of the texture features."""
    b = _standardised(before, moments.texture_before)
    a = _standardised(after, moments.texture_after)
    return np.sqrt(((a - b) ** 2).mean(axis=1))


def robust_z(values: np.ndarray) -> np.ndarray:
    """``(x - median) / (1.4826 MAD)`` over ``values``; a MAD of 0 falls back to the sd."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return values
    median = np.median(values)
    spread = MAD_TO_SD * np.median(np.abs(values - median))
    if spread <= 1e-12:
        spread = float(values.std()) or 1.0
    return (values - median) / spread


def combined_score(
    colour: np.ndarray, texture: np.ndarray, criteria: AppearanceCriteria
) -> np.ndarray:
    """The chip's change in robust standard deviations of its scene (see the module doc)."""
    return robust_z(robust_z(colour) + criteria.texture_weight * robust_z(texture))


def gaussian_tail(threshold_z: float) -> float:
    """P(Z >= threshold_z) for a standard normal: the flagged share if unchanged chips' scores
    were normal (real scenes have heavier tails: the benchmark measures the actual rate)."""
    from math import erfc, sqrt

    return 0.5 * erfc(threshold_z / sqrt(2.0))
