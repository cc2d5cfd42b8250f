"""Which chips to label next for training: uncertain ones, unlike those labelled already.

Ranked batch-mode active learning (Cardoso, Cabral, Cruz & Tiago, "Ranked batch-mode active
learning", Information Sciences 379, 2017): chips are picked one at a time, each the best by

    score = alpha * (1 - similarity) + (1 - alpha) * uncertainty,
    alpha = |pool| / (|pool| + |labelled|),

where ``uncertainty`` is 1 - the map's top class probability and ``similarity`` is
1 / (1 + the distance to the nearest labelled or already picked chip), the distance being the
root-mean-square difference of the standardised features (:func:`standardised`). The features
`sample` uses are what the map says and what the chip looks like: its class probabilities and
its colour (each band's mean and spread over its 40 m cells). On the Czech reference squares,
with nothing labelled and the map trained on EuroSAT tiles alone, 20 picks in that space held
5 forest and 4 built squares (the scene has 16 and 8 of 218; 20 random squares hold ~1.5 and
~0.7); in the featurizer's texture statistics they held 0 forest and 3 built: the texture of
fields varies more than that of woods and villages, so it spread the picks over fields. While few
chips are labelled, being unlike them counts most (a scene's winter woods that no label
covers); as labels accumulate, uncertainty takes over. A chip picked counts as
labelled for the next pick, so a batch does not ask twice for the same kind of chip.

modAL implements the same algorithm (``modAL.batch.ranked_batch``) but requires skorch, hence
PyTorch, for a greedy loop of a few lines; numpy only here, no Spark, no Kedro.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aerial_kedro.chips.descriptors import decode_colour_cells


def uncertainty(probabilities: np.ndarray) -> np.ndarray:
    """Per row of ``(chips, classes)`` probabilities: 1 - the top probability."""
    return 1.0 - np.asarray(probabilities, dtype=np.float64).max(axis=1)


def standardised(*parts: np.ndarray) -> list[np.ndarray]:
    """The parts (rows = chips, the same columns) standardised per column over all of them
    together (a constant column stays 0), then divided by the square root of the number of
    columns: a Euclidean distance between two rows is then their root-mean-square standardised
    difference per feature, about 1.4 between two typical chips whatever the dimension (the
    similarity 1 / (1 + distance) would otherwise be near 0 for every pair of 688-d chips)."""
    stacked = np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])
    mean = stacked.mean(axis=0)
    sd = stacked.std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0) * np.sqrt(stacked.shape[1])
    return [(np.asarray(p, dtype=np.float64) - mean) / sd for p in parts]


def colour_statistics(cells: np.ndarray) -> np.ndarray:
    """``(chips, 6)``: each band's mean and spread over a chip's colour cells ``(chips, cells, 3)``."""
    return np.concatenate([cells.mean(axis=1), cells.std(axis=1)], axis=1)


def candidate_blocks(
    probabilities: Sequence[Sequence[float]], colours: Sequence[bytes]
) -> list[np.ndarray]:
    """The feature blocks `sample` picks candidates in, per chip: the map's class probabilities
    and the chip's :func:`colour_statistics` (from its colour cells' bytes)."""
    cells, _ = decode_colour_cells(list(colours))
    stacked = np.asarray([np.asarray(p, dtype=np.float64) for p in probabilities])
    return [stacked.reshape(len(cells), -1), colour_statistics(cells)]


def feature_space(
    pool: list[np.ndarray], labelled: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """``(pool, labelled)`` rows in one space from blocks of features (the same blocks, in the
    same order, for both): each block :func:`standardised` over pool and labelled together,
    the blocks side by side, each weighing alike in a distance."""
    pairs = [standardised(p, lab) for p, lab in zip(pool, labelled, strict=True)]
    weight = np.sqrt(len(pairs))
    return (
        np.concatenate([p for p, _ in pairs], axis=1) / weight,
        np.concatenate([lab for _, lab in pairs], axis=1) / weight,
    )


def ranked_batch(
    pool: np.ndarray, pool_uncertainty: np.ndarray, labelled: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(indices into pool, their distance to the nearest labelled chip)``: the ``n`` chips to
    label, best first (see the module doc). ``pool`` and ``labelled`` are ``(chips, features)``
    in the same standardised units; with nothing labelled the first pick is the pool's most
    typical chip (nearest its mean) and the rest follow from it. Ties go to the lower index."""
    pool = np.asarray(pool, dtype=np.float64)
    pool_uncertainty = np.asarray(pool_uncertainty, dtype=np.float64)
    if len(pool) != len(pool_uncertainty):
        raise ValueError("every pool chip needs an uncertainty")
    n = min(n, len(pool))
    if n <= 0:
        return np.array([], dtype=np.int64), np.array([])
    labelled = np.asarray(labelled, dtype=np.float64).reshape(-1, pool.shape[1])
    nearest = _nearest_distance(pool, labelled)
    distance_to_labels = nearest.copy()
    picked: list[int] = []
    available = np.ones(len(pool), dtype=bool)
    if not len(labelled):
        first = int(np.argmin(((pool - pool.mean(axis=0)) ** 2).sum(axis=1)))
        picked.append(first)
        available[first] = False
        nearest = np.minimum(nearest, np.sqrt(((pool - pool[first]) ** 2).sum(axis=1)))
    known = len(labelled) + len(picked)
    while len(picked) < n:
        unknown = int(available.sum())
        alpha = unknown / (unknown + known)
        score = alpha * (1.0 - 1.0 / (1.0 + nearest)) + (1.0 - alpha) * pool_uncertainty
        best = int(np.argmax(np.where(available, score, -np.inf)))
        picked.append(best)
        available[best] = False
        known += 1
        nearest = np.minimum(nearest, np.sqrt(((pool - pool[best]) ** 2).sum(axis=1)))
    order = np.asarray(picked, dtype=np.int64)
    return order, distance_to_labels[order]


def _nearest_distance(pool: np.ndarray, labelled: np.ndarray, block: int = 1024) -> np.ndarray:
    """Per pool row: Euclidean distance to the nearest ``labelled`` row (inf without any)."""
    out = np.full(len(pool), np.inf)
    for start in range(0, len(labelled), block):
        part = labelled[start : start + block]
        squared = (
            (pool**2).sum(axis=1)[:, None] - 2.0 * pool @ part.T + (part**2).sum(axis=1)[None, :]
        )
        out = np.minimum(out, np.sqrt(np.maximum(squared, 0.0)).min(axis=1))
    return out
