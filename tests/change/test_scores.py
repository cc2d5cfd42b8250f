"""Change scores: a season's crop-type swap is no change, a field turned into houses is."""

from __future__ import annotations

import numpy as np
import pytest

from aerial_kedro.change.scores import (
    change_scores,
    check_method,
    hellinger,
    make_grouping,
    total_variation,
)
from aerial_kedro.geo.palette import EUROSAT_CLASSES


def one_hot(name: str, weight: float = 1.0) -> np.ndarray:
    """A EuroSAT probability vector with ``weight`` on ``name``, the rest spread evenly."""
    p = np.full(len(EUROSAT_CLASSES), (1 - weight) / (len(EUROSAT_CLASSES) - 1))
    p[EUROSAT_CLASSES.index(name)] = weight
    return p


def test_eurosat_classes_group_into_five_coarse_classes():
    grouping = make_grouping(EUROSAT_CLASSES)
    assert grouping.groups == ("forest", "cropland", "grassland", "built", "water")
    assert grouping.matrix.sum(axis=1).tolist() == [1.0] * 10
    assert grouping.groups[grouping.group_of(EUROSAT_CLASSES.index("Highway"))] == "built"


def test_unlisted_classes_are_their_own_group_so_a_coarse_model_works():
    grouping = make_grouping(["built", "cropland", "forest", "wetland"])
    assert grouping.groups == ("forest", "cropland", "built", "wetland")
    assert make_grouping(EUROSAT_CLASSES, groups={}).groups == EUROSAT_CLASSES


def test_crop_swap_is_no_change_but_field_to_houses_is():
    grouping = make_grouping(EUROSAT_CLASSES)
    before = np.stack([one_hot("AnnualCrop"), one_hot("AnnualCrop"), one_hot("Pasture")])
    after = np.stack([one_hot("PermanentCrop"), one_hot("Residential"), one_hot("Pasture")])
    tv = change_scores(before, after, grouping, method="tv")
    assert tv == pytest.approx([0.0, 1.0, 0.0])
    # Without grouping the crop swap would count as complete change.
    fine = change_scores(before, after, make_grouping(EUROSAT_CLASSES, groups={}), method="tv")
    assert fine[0] == pytest.approx(1.0)


def test_distances_by_hand():
    a = np.array([[0.5, 0.5, 0.0]])
    b = np.array([[0.5, 0.0, 0.5]])
    assert total_variation(a, b) == pytest.approx([0.5])
    # Hellinger: affinity = sqrt(0.25) = 0.5 -> sqrt(1 - 0.5)
    assert hellinger(a, b) == pytest.approx([np.sqrt(0.5)])
    assert hellinger(a, a) == pytest.approx([0.0])


def test_confidence_floor_silences_unsure_dates():
    grouping = make_grouping(EUROSAT_CLASSES)
    unsure = one_hot("Forest", 0.35)  # coarse forest 0.35 + ... top coarse prob < 0.6
    sure_built = one_hot("Residential", 0.95)
    before = np.stack([unsure, one_hot("Forest", 0.95)])
    after = np.stack([sure_built, sure_built])
    raw = change_scores(before, after, grouping)
    floored = change_scores(before, after, grouping, confidence_floor=0.6)
    assert raw[0] > 0.5 and floored[0] == 0.0
    assert floored[1] == pytest.approx(raw[1]) and raw[1] > 0.8


def test_gain_is_directional():
    grouping = make_grouping(EUROSAT_CLASSES)
    field, town = one_hot("AnnualCrop"), one_hot("Residential")
    gain = change_scores(np.stack([field, town]), np.stack([town, field]), grouping,
                         method="gain:built")  # fmt: skip
    assert gain == pytest.approx([1.0, 0.0])


def test_unknown_methods_and_groups_are_refused():
    with pytest.raises(ValueError, match="not allowed"):
        check_method("cosine")
    with pytest.raises(ValueError, match="no group 'urban'"):
        change_scores(np.eye(10)[:1], np.eye(10)[:1], make_grouping(EUROSAT_CLASSES),
                      method="gain:urban")  # fmt: skip
    with pytest.raises(ValueError, match="do not match"):
        make_grouping(EUROSAT_CLASSES).coarse(np.ones((2, 3)))
