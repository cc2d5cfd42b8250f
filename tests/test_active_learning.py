"""Ranked batch-mode selection of chips to label (aerial_kedro.active_learning)."""

from __future__ import annotations

import numpy as np
import pytest

from aerial_kedro.active_learning import ranked_batch, standardised, uncertainty


def two_kinds(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """60 chips like the labelled ones (around 0) and 20 of an unlabelled kind (around 6)."""
    rng = np.random.default_rng(seed)
    known = rng.normal(0.0, 0.3, (60, 4))
    unknown = rng.normal(6.0, 0.3, (20, 4))
    return np.concatenate([known, unknown]), rng.normal(0.0, 0.3, (10, 4))


def test_uncertainty_is_one_less_the_top_probability():
    assert uncertainty(np.array([[0.9, 0.1], [0.5, 0.5]])).tolist() == pytest.approx([0.1, 0.5])


def test_few_labels_ask_first_for_the_kind_no_label_covers():
    pool, labelled = two_kinds()
    # The known kind is even a little more uncertain: unlikeness still wins while labels are few.
    doubt = np.r_[np.full(60, 0.4), np.full(20, 0.3)]
    picked, distance = ranked_batch(pool, doubt, labelled, 5)
    assert picked[0] >= 60  # the unlabelled kind
    assert distance[0] > 5  # and it is far from every label


def test_a_batch_does_not_ask_twice_for_the_same_thing():
    pool, labelled = two_kinds()
    doubt = np.full(len(pool), 0.3)
    picked, _ = ranked_batch(pool, doubt, labelled, 3)
    # After one chip of the unlabelled kind is picked, it counts as labelled: the next picks are
    # not its near-duplicates (all 20 lie within ~1 of each other) but the farthest remaining.
    first = pool[picked[0]]
    gaps = [np.linalg.norm(pool[i] - first) for i in picked[1:]]
    assert all(g > 0.3 for g in gaps) and len(set(picked.tolist())) == 3


def test_with_many_labels_the_most_uncertain_chips_come_first():
    rng = np.random.default_rng(1)
    pool = rng.normal(0.0, 1.0, (30, 3))
    labelled = rng.normal(0.0, 1.0, (3000, 3))  # alpha = 30 / 3030: uncertainty decides
    doubt = np.linspace(0.0, 0.6, 30)
    picked, _ = ranked_batch(pool, doubt, labelled, 3)
    assert picked.tolist() == [29, 28, 27]


def test_the_score_by_hand():
    # Pool a at distance 1 from the label (similarity 1/2), b at distance 3 (1/4); alpha = 2 / 3.
    pool = np.array([[1.0, 0.0], [3.0, 0.0]])
    labelled = np.array([[0.0, 0.0]])
    # a: 2/3 * 1/2 + 1/3 * 0.9 = 0.633; b: 2/3 * 3/4 + 1/3 * 0.2 = 0.567 -> a first.
    picked, distance = ranked_batch(pool, np.array([0.9, 0.2]), labelled, 1)
    assert picked.tolist() == [0] and distance.tolist() == [1.0]
    # b less uncertain still: 2/3 * 3/4 + 1/3 * 0.5 = 0.667 > a's 0.633.
    assert ranked_batch(pool, np.array([0.9, 0.5]), labelled, 1)[0].tolist() == [1]


def test_nothing_labelled_starts_from_the_most_typical_chip_and_is_deterministic():
    pool, _ = two_kinds()
    doubt = np.full(len(pool), 0.2)
    picked, distance = ranked_batch(pool, doubt, np.empty((0, 4)), 4)
    mean = pool.mean(axis=0)
    assert picked[0] == int(np.argmin(((pool - mean) ** 2).sum(axis=1)))
    assert np.isinf(distance).all()  # no label to be far from
    assert ranked_batch(pool, doubt, np.empty((0, 4)), 4)[0].tolist() == picked.tolist()


def test_no_more_picks_than_chips_and_columns_standardised_together():
    pool, labelled = standardised(np.array([[1.0, 5.0], [3.0, 5.0]]), np.array([[2.0, 5.0]]))
    # Column 0: mean 2, sd sqrt(2/3), then / sqrt(2 columns); column 1 constant.
    assert pool[:, 0].tolist() == pytest.approx([-np.sqrt(0.75), np.sqrt(0.75)])
    assert (pool[:, 1] == 0).all() and labelled.tolist() == [[0.0, 0.0]]
    assert len(ranked_batch(pool, np.zeros(2), labelled, 10)[0]) == 2
    with pytest.raises(ValueError, match="uncertainty"):
        ranked_batch(pool, np.zeros(3), labelled, 1)


def test_blocks_weigh_alike_whatever_their_width():
    from aerial_kedro.active_learning import colour_statistics, feature_space

    cells = np.zeros((2, 256, 3))
    cells[1, :128] = 10.0  # half its cells at 10: mean 5, spread 5 in every band
    assert colour_statistics(cells).tolist() == [[0.0] * 6, [5.0] * 6]
    rng = np.random.default_rng(2)
    wide, narrow = rng.normal(size=(50, 100)), rng.normal(size=(50, 2))
    pool, labelled = feature_space([wide[:40], narrow[:40]], [wide[40:], narrow[40:]])
    assert pool.shape == (40, 102) and labelled.shape == (10, 102)
    # Each block's share of a squared distance is about half, though one has 50 x the columns.
    both = np.concatenate([pool, labelled])
    share = (both[:, :100] ** 2).sum() / (both**2).sum()
    assert 0.45 < share < 0.55
