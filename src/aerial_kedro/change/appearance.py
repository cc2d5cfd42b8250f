"""Change from what two dates' chips look like, each date standardised against its own scene.

A scored chip keeps two compact descriptors beside its prediction, its colour cells and its
texture (:mod:`aerial_kedro.chips.descriptors`), so a completed ``score`` run is all ``change``
needs. Comparing them (here per chip; ``pipelines/change/descriptors.py`` runs it over Spark):

1. Each date is standardised over the chips *both* dates cover, clear on both (per band for
   the colour cells, per feature for the texture): the scene-wide shift of season, sun angle,
   haze and sensor calibration is removed, what differs locally stays.
2. ``colour_change``: how surprising each cell's colour on one date is, *given its colour on
   the other date*, among the scene's cells that looked the same (:func:`conditional_colour_change`).
   For a cell, its ``neighbours`` nearest cells in the scene by (standardised) colour on the
   before date say what such a cell normally becomes: their after-date colours' mean and 3 x 3
   covariance; the cell's surprise is the Mahalanobis distance of its own after colour from
   them. The same the other way round (after -> before); the cell's change is the mean of the
   two. Summer fields that all turn brown in winter are not change (every green cell of the
   scene did it); a green field that turns grey is. Then the ``colour_quantile`` quantile over
   the chip's cells: a chip changes when some of its cells change strongly, as OSCD's "10 % of
   the chip's pixels" does. Cells half cloud-like or more on either date take no part (neither
   as cells nor as neighbours, nor in the standardisation). The neighbours come from the
   scene's clear cells, at most ``reference_chips`` chips' worth (a fixed, hash-chosen subset
   of the chips above that) plus always the chip's own cells. ``neighbours = 0`` is the
   earlier, unconditional cue: the Euclidean distance between a cell's two standardised colours
   (:func:`colour_change`). With ``cell_window`` w > 1, each cell's change is first averaged
   over the w x w cells around it inside the chip (:func:`smooth_cells`): a change is an object
   of several cells (a block of houses), a lone surprising 40 m cell is more often noise.
3. ``texture_change`` = the root-mean-square standardised difference of the texture features.
4. ``change_score`` = the robust z (median, 1.4826 MAD over the scene's compared chips) of
   ``robust_z(colour_change) + texture_weight * robust_z(texture_change)``: how unusual the
   chip's change is among its own scene's chips, in robust standard deviations. A threshold on
   it means the same on every scene; a scene where nothing changed has few chips past it.
5. Spatial context (``context_weight`` c > 0, :func:`spatial_context`): the robust z of that
   score + c x the mean score of the chip's compared neighbours on the chip grid (the up to 8
   chips around it), so a chip inside a changed area counts for more than a lone one. Only
   chips compared on both dates are neighbours (cloudy, one-date, empty or unreadable chips and
   chips outside the scene or in another CRS do not count); the mean is over those present, and
   a chip without any gets 0, the scene's median chip (no evidence either way).

Measured (benchmarks/change_oscd.py, OSCD, a chip changed when >= 10 % of its pixels are): see
docs/change.md. Numpy (scipy's k-d tree, a pandas index for the chip grid): no Spark, no Kedro.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from scipy.ndimage import binary_dilation
from scipy.spatial import cKDTree

from aerial_kedro.chips.descriptors import CLOUDY_CELL

# Added to each neighbourhood's 3 x 3 colour covariance (standardised units): a neighbourhood of
# identical cells would otherwise make any difference infinitely surprising.
COVARIANCE_RIDGE = 1e-3
CHUNK_CHIPS = 64  # chips whose neighbours are looked up at once (bounds memory: ~20 MB at k=50)
MAD_TO_SD = 1.4826  # MAD of a normal distribution x this = its standard deviation


@dataclass(frozen=True)
class AppearanceCriteria:
    """How two dates' descriptors are compared (``change.appearance`` parameters). These
    defaults are the parameters' defaults (pipelines/change/settings.py reads them from here);
    conf/base/parameters_change.yml writes the same values out with the measurements behind
    them."""

    colour_quantile: float = 0.95
    texture_weight: float = 0.5
    threshold_z: float = 2.25
    neighbours: int = 50
    reference_chips: int = 1024
    context_weight: float = 0.0
    cell_window: int = 1
    cloudy_cell: float = CLOUDY_CELL
    cloud_buffer: int = 0
    chip_baseline: float = 1.0


def buffer_cells(cloudy: np.ndarray, radius: int) -> np.ndarray:
    """``(chips, cells)`` bool of square chips' cells, each cloudy cell grown by ``radius``
    cells in every direction inside its chip: the thin cloud and haze at a cloud's edge,
    which the cloud test misses, look like change."""
    if radius <= 0 or not cloudy.any():
        return cloudy
    chips, count = cloudy.shape
    side = int(round(np.sqrt(count)))
    size = 2 * radius + 1
    grown = binary_dilation(
        cloudy.reshape(chips, side, side), structure=np.ones((1, size, size), dtype=bool)
    )
    return grown.reshape(chips, count)


def cloudy_cells(
    share_before: np.ndarray, share_after: np.ndarray, criteria: AppearanceCriteria
) -> np.ndarray:
    """The cells left out of the comparison: cloud-like on either date, with the buffer."""
    return buffer_cells(share_before | share_after, criteria.cloud_buffer)


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
    window: int = 1,
    baseline: float = 0.0,
) -> np.ndarray:
    """Per chip: the ``quantile`` of its clear cells' standardised RGB difference (0 for a chip
    without a clear cell: no evidence of change), each cell first averaged over its ``window``
    (:func:`smooth_cells`)."""
    b = _standardised(before, moments.colour_before)
    a = _standardised(after, moments.colour_after)
    per_cell = np.sqrt(((a - b) ** 2).sum(axis=2))
    if cloudy is not None:
        per_cell = np.where(cloudy, np.nan, per_cell)
    return _chip_quantile(smooth_cells(per_cell, window), quantile, baseline)


def smooth_cells(per_cell: np.ndarray, window: int) -> np.ndarray:
    """``(chips, cells)`` values of square chips' cells (row-major), each replaced by the mean of
    the clear (non-NaN) cells in the ``window`` x ``window`` block centred on it, inside its own
    chip: a cell at the chip's edge averages the part of the block inside the chip. NaN cells
    stay NaN and count for nothing; ``window`` 1 returns the values as they are."""
    if window < 1 or window % 2 == 0:
        raise ValueError(f"a cell window is an odd number of cells >= 1, not {window}")
    if window == 1:
        return per_cell
    chips, count = per_cell.shape
    side = int(round(np.sqrt(count)))
    if side * side != count:
        raise ValueError(f"{count} cells per chip are not a square grid")
    grid = per_cell.reshape(chips, side, side)
    clear = ~np.isnan(grid)
    half = window // 2
    values = np.pad(np.where(clear, grid, 0.0), ((0, 0), (half, half), (half, half)))
    weights = np.pad(clear.astype(np.float64), ((0, 0), (half, half), (half, half)))
    total = np.zeros_like(grid, dtype=np.float64)
    counted = np.zeros_like(grid, dtype=np.float64)
    for dr in range(window):
        for dc in range(window):
            total += values[:, dr : dr + side, dc : dc + side]
            counted += weights[:, dr : dr + side, dc : dc + side]
    smoothed = np.where(clear, total / np.maximum(counted, 1.0), np.nan)
    return smoothed.reshape(chips, count)


def _chip_quantile(per_cell: np.ndarray, quantile: float, baseline: float = 0.0) -> np.ndarray:
    """The ``quantile`` over each chip's cells, NaN cells left out (0 for a chip without one),
    less ``baseline`` x the chip's median cell (:func:`local_excess`)."""
    out = np.zeros(len(per_cell))
    some = ~np.isnan(per_cell).all(axis=1)
    out[some] = np.nanquantile(per_cell[some], quantile, axis=1)
    if baseline:
        out[some] -= baseline * np.nanmedian(per_cell[some], axis=1)
    return out


@dataclass(frozen=True)
class CellReference:
    """The scene's clear cells on both dates, standardised: the neighbours every cell's change
    is judged against (:func:`conditional_colour_change`).

    Built on the driver from the chips both dates cover (all of them up to the
    ``reference_chips`` limit, else a fixed subset): 2 x 3 float32 and a chip index per cell,
    about 7 MB for 1,024 chips, broadcast to the executors.
    """

    chip_ids: tuple[str, ...]
    cell_chip: np.ndarray  # (cells,) int32: index into chip_ids
    before: np.ndarray  # (cells, 3) float32, standardised
    after: np.ndarray

    @classmethod
    def of(
        cls,
        chip_ids: Sequence[str],
        colour_before: np.ndarray,
        colour_after: np.ndarray,
        moments: SceneMoments,
        cloudy: np.ndarray | None = None,
    ) -> CellReference:
        """From ``(chips, cells, 3)`` colour cells of both dates; ``cloudy`` cells left out.

        Chips are put in id order: 8-bit cell means tie often, and which of equally near cells
        are the neighbours must not depend on the order Spark collected them in."""
        order = np.argsort(np.asarray(chip_ids, dtype=str), kind="stable")
        chip_ids = [chip_ids[i] for i in order]
        colour_before, colour_after = colour_before[order], colour_after[order]
        cloudy = None if cloudy is None else cloudy[order]
        chips, cells = colour_before.shape[:2]
        clear = np.ones((chips, cells), bool) if cloudy is None else ~cloudy
        cell_chip = np.repeat(np.arange(chips, dtype=np.int32), cells).reshape(chips, cells)
        return cls(
            tuple(chip_ids),
            cell_chip[clear],
            _standardised(colour_before, moments.colour_before)[clear].astype(np.float32),
            _standardised(colour_after, moments.colour_after)[clear].astype(np.float32),
        )

    def __len__(self) -> int:
        return len(self.cell_chip)

    @cached_property
    def trees(self) -> tuple[cKDTree, cKDTree]:
        """k-d trees of the before and the after colours (built where first used)."""
        return cKDTree(self.before), cKDTree(self.after)

    @cached_property
    def _chip_set(self) -> frozenset[str]:
        return frozenset(self.chip_ids)

    def holds(self, chip_ids: Sequence[str]) -> np.ndarray:
        """Per chip: are its cells in the reference already?"""
        chip_set = self._chip_set
        return np.array([c in chip_set for c in chip_ids], dtype=bool)


def _mahalanobis(values: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """Per row: the Mahalanobis distance of ``values[i]`` (3,) from ``neighbours[i]`` (k, 3)."""
    k = neighbours.shape[1]
    mean = neighbours.mean(axis=1)
    deviations = neighbours - mean[:, None, :]
    covariance = np.einsum("nki,nkj->nij", deviations, deviations) / max(k - 1, 1)
    covariance += COVARIANCE_RIDGE * np.eye(3)
    residual = values - mean
    solved = np.linalg.solve(covariance, residual[..., None])[..., 0]
    return np.sqrt(np.maximum((residual * solved).sum(axis=1), 0.0))


def _surprise(
    given: np.ndarray,
    other: np.ndarray,
    clear: np.ndarray,
    held: np.ndarray,
    tree: cKDTree,
    reference_other: np.ndarray,
    neighbours: int,
) -> np.ndarray:
    """Per cell ``(chips, cells)``: Mahalanobis distance of its ``other``-date colour from those
    of its ``neighbours`` nearest reference cells by ``given``-date colour. A chip not ``held``
    in the reference adds its own clear cells to the candidates (so every chip is judged
    against the reference and itself, whether or not the reference holds it)."""
    chips, cells, _ = given.shape
    out = np.empty((chips, cells))
    k = min(neighbours, tree.n)
    held_rows = np.flatnonzero(held)
    for start in range(0, len(held_rows), CHUNK_CHIPS):
        rows = held_rows[start : start + CHUNK_CHIPS]
        _, index = tree.query(given[rows].reshape(-1, 3), k=k)
        index = np.asarray(index).reshape(-1, k)
        out[rows] = _mahalanobis(
            other[rows].reshape(-1, 3), reference_other[index].astype(np.float64)
        ).reshape(len(rows), cells)
    for row in np.flatnonzero(~held):
        own_given, own_other = given[row][clear[row]], other[row][clear[row]]
        k_all = min(neighbours, tree.n + len(own_given))
        distance, index = tree.query(given[row], k=k)
        distance = np.asarray(distance).reshape(cells, k)
        index = np.asarray(index).reshape(cells, k)
        own_distance = np.sqrt(((given[row][:, None, :] - own_given[None]) ** 2).sum(axis=2))
        distances = np.concatenate([distance, own_distance], axis=1)
        candidates = np.concatenate(
            [reference_other[index], np.broadcast_to(own_other, (cells, *own_other.shape))],
            axis=1,
        )
        nearest = np.argsort(distances, axis=1, kind="stable")[:, :k_all]
        chosen = np.take_along_axis(candidates, nearest[..., None], axis=1)
        out[row] = _mahalanobis(other[row], chosen.astype(np.float64))
    return out


def conditional_colour_change(
    chip_ids: Sequence[str],
    before: np.ndarray,
    after: np.ndarray,
    moments: SceneMoments,
    reference: CellReference,
    neighbours: int,
    quantile: float,
    cloudy: np.ndarray | None = None,
    window: int = 1,
    baseline: float = 0.0,
) -> np.ndarray:
    """Per chip: the ``quantile`` over its clear cells of how surprising each cell's colour on
    one date is given its colour on the other, among the ``neighbours`` reference cells most
    alike on that other date (Mahalanobis; the mean of both directions; see the module doc),
    each cell first averaged over its ``window`` (:func:`smooth_cells`). 0 for a chip without
    a clear cell."""
    if neighbours < 2:
        raise ValueError(f"a colour neighbourhood needs at least 2 neighbours, not {neighbours}")
    if len(reference) < 2:  # (almost) every cell cloudy: no evidence of change anywhere
        return np.zeros(len(before))
    b = _standardised(before, moments.colour_before)
    a = _standardised(after, moments.colour_after)
    clear = np.ones(b.shape[:2], bool) if cloudy is None else ~cloudy
    held = reference.holds(chip_ids)
    tree_before, tree_after = reference.trees
    forward = _surprise(b, a, clear, held, tree_before, reference.after, neighbours)
    backward = _surprise(a, b, clear, held, tree_after, reference.before, neighbours)
    per_cell = np.where(clear, (forward + backward) / 2, np.nan)
    return _chip_quantile(smooth_cells(per_cell, window), quantile, baseline)


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


@dataclass(frozen=True)
class GridPlaces:
    """Where chips lie on the chip grid: their CRS, row and column (one entry per chip)."""

    crs: Sequence[str]
    row: np.ndarray
    col: np.ndarray


def neighbour_mean(places: GridPlaces, values: np.ndarray) -> np.ndarray:
    """Per chip: the mean of ``values`` over its neighbours on the chip grid, the chips of the
    same CRS whose row and column are each within 1 of its own (up to 8), among the chips given;
    0 for a chip none of whose neighbours is given."""
    values = np.asarray(values, dtype=np.float64)
    crs_codes = pd.factorize(pd.Series(list(places.crs), dtype=object))[0]
    row = np.asarray(places.row, dtype=np.int64)
    col = np.asarray(places.col, dtype=np.int64)
    if not len(values) == len(crs_codes) == len(row) == len(col):
        raise ValueError("chip places and values differ in length")
    index = pd.MultiIndex.from_arrays([crs_codes, row, col])
    if not index.is_unique:
        raise ValueError("two chips share one place on the chip grid")
    total = np.zeros(len(values))
    count = np.zeros(len(values))
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr == dc == 0:
                continue
            found = index.get_indexer(pd.MultiIndex.from_arrays([crs_codes, row + dr, col + dc]))
            present = found >= 0
            total[present] += values[found[present]]
            count[present] += 1
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


def spatial_context(score: np.ndarray, places: GridPlaces, weight: float) -> np.ndarray:
    """``robust_z(score + weight x neighbour_mean(score))``: a chip's robust-z change with that
    of the compared chips around it (module doc, step 5); ``weight`` 0 returns ``score``."""
    if weight == 0:
        return np.asarray(score, dtype=np.float64)
    return robust_z(score + weight * neighbour_mean(places, score))


def combined_score(
    colour: np.ndarray,
    texture: np.ndarray,
    criteria: AppearanceCriteria,
    places: GridPlaces | None = None,
) -> np.ndarray:
    """The chip's change in robust standard deviations of its scene (see the module doc), with
    its neighbours' (``criteria.context_weight``; needs the chips' grid ``places``)."""
    score = robust_z(robust_z(colour) + criteria.texture_weight * robust_z(texture))
    if not criteria.context_weight:
        return score
    if places is None:
        raise ValueError("spatial context (context_weight > 0) needs the chips' grid places")
    return spatial_context(score, places, criteria.context_weight)


def gaussian_tail(threshold_z: float) -> float:
    """P(Z >= threshold_z) for a standard normal: the flagged share if unchanged chips' scores
    were normal (real scenes have heavier tails: the benchmark measures the actual rate)."""
    from math import erfc, sqrt

    return 0.5 * erfc(threshold_z / sqrt(2.0))
