"""A spatial train/test split of labelled chips: whole blocks of neighbouring chips go one way.

Neighbouring chips of a scene are near-duplicates (same field, same wood, same light). A random
chip split puts one half of a wood in training and the other in test and reports an accuracy the
map will not have on ground it never saw. Chips are therefore grouped into square blocks of
``block_chips`` x ``block_chips`` grid cells, and blocks - never single chips - are assigned.
"""

from __future__ import annotations

import hashlib

import pandas as pd


def block_key(crs: str, row: int, col: int, block_chips: int) -> str:
    """The block a chip falls in: its grid cell divided by ``block_chips`` (floor)."""
    return f"{crs}/{row // block_chips}/{col // block_chips}"


def _block_order(key: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def spatial_block_split(
    chips: pd.DataFrame, test_fraction: float, block_chips: int, seed: int
) -> pd.Series:
    """``"train"`` / ``"test"`` per chip (index of ``chips``), assigned per spatial block.

    Blocks are visited in a seeded pseudo-random order; a block goes to test while the class
    it holds most of still has fewer than ``round(n_class * test_fraction)`` test chips, unless
    that would leave one of its classes without training chips. The assignment depends only on
    chip positions, labels and the seed.
    """
    if chips.empty:
        return pd.Series([], dtype=object, index=chips.index)
    if block_chips < 1:
        raise ValueError(f"reference.block_chips must be >= 1, got {block_chips}")
    blocks = [
        block_key(crs, int(row), int(col), block_chips)
        for crs, row, col in zip(chips["crs"], chips["row"], chips["col"], strict=True)
    ]
    frame = pd.DataFrame({"block": blocks, "label": chips["label"].to_numpy()}, index=chips.index)
    sizes = frame["label"].value_counts()
    quota = (sizes * test_fraction).round().astype(int)
    in_test = {label: 0 for label in quota.index}
    test_blocks: set[str] = set()
    for block in sorted(frame["block"].unique(), key=lambda key: _block_order(key, seed)):
        labels = frame.loc[frame["block"] == block, "label"]
        counts = labels.value_counts()
        major = counts.index[0]
        takes_all = any(in_test[label] + count >= sizes[label] for label, count in counts.items())
        if takes_all or in_test[major] >= quota[major]:
            continue
        test_blocks.add(block)
        for label, count in counts.items():
            in_test[label] += int(count)
    return frame["block"].map(lambda block: "test" if block in test_blocks else "train")
