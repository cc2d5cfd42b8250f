"""Olofsson et al. (2014) estimators: the paper's numerical example, and the cases maps produce."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from aerial_kedro.assessment.olofsson import assess_accuracy, assess_strata, error_matrix

# Section 5 of Olofsson et al. (2014), Remote Sensing of Environment 148, 42-57.
CLASSES = ["deforestation", "forest gain", "stable forest", "stable non-forest"]
PIXELS = [200_000, 150_000, 3_200_000, 6_450_000]  # mapped area, 30 m pixels
HA_PER_PIXEL = 0.09
COUNTS = [  # rows = map class (strata), columns = reference class, same order
    [66, 0, 5, 4],
    [0, 55, 8, 12],
    [1, 0, 153, 11],
    [2, 1, 9, 313],
]


@pytest.fixture(scope="module")
def example():
    return assess_accuracy(COUNTS, [p * HA_PER_PIXEL for p in PIXELS], CLASSES)


def test_published_numbers_of_the_paper_example(example):
    """Numbers printed in the paper (section 5), to the precision it prints them."""
    deforestation = example.area["deforestation"]
    assert round(deforestation.value) == 21_158  # ha
    assert round(deforestation.ci95) == 6_158  # ha, 95 % CI half-width = 1.96 SE
    users = [example.users_accuracy[c].value for c in CLASSES]
    producers = [example.producers_accuracy[c].value for c in CLASSES]
    assert np.round(users, 2).tolist() == [0.88, 0.73, 0.93, 0.96]
    # The brief quoted ~0.97 for stable non-forest; eq. 3 on these inputs gives 0.9616 (hand
    # computation below), so 0.96 is asserted: the other three agree with the brief.
    assert np.round(producers, 2).tolist() == [0.75, 0.85, 0.93, 0.96]
    assert round(example.overall_accuracy.value, 2) == 0.95


def test_hand_computed_numbers_of_the_paper_example(example):
    """Computed by hand (exact fractions) from the inputs above, not copied from the paper.

    W = (0.02, 0.015, 0.32, 0.645); n_i. = (75, 75, 165, 325).
    p_.1 = 0.02*66/75 + 0.32*1/165 + 0.645*2/325 = 0.0176 + 0.0019394 + 0.0039692 = 0.0235086
    area(deforestation) = 0.0235086 * 900,000 ha = 21,157.8 ha; mapped 18,000 ha.
    OA = 0.0176 + 0.011 + 0.2967273 + 0.6211846 = 0.9465119.
    """
    p = example.proportions
    assert p[0].tolist() == pytest.approx([0.0176, 0.0, 0.0013333, 0.0010667], abs=1e-7)
    assert p[3].tolist() == pytest.approx([0.0039692, 0.0019846, 0.0178615, 0.6211846], abs=1e-7)
    assert np.nansum(p) == pytest.approx(1.0)
    assert example.overall_accuracy.value == pytest.approx(0.9465119, abs=1e-7)
    assert example.overall_accuracy.ci95 == pytest.approx(0.0184836, abs=1e-6)  # eq. 5
    users = [example.users_accuracy[c] for c in CLASSES]
    assert [u.value for u in users] == pytest.approx([66 / 75, 55 / 75, 153 / 165, 313 / 325])
    assert [u.ci95 for u in users] == pytest.approx([0.0740, 0.1008, 0.0397, 0.0205], abs=1e-4)
    producers = [example.producers_accuracy[c] for c in CLASSES]
    assert [q.value for q in producers] == pytest.approx(
        [0.7486614, 0.8471564, 0.9345089, 0.9616090], abs=1e-7
    )
    assert [q.ci95 for q in producers] == pytest.approx(  # eq. 7
        [0.2133, 0.2544, 0.0343, 0.0184], abs=1e-4
    )
    areas = [example.area[c] for c in CLASSES]
    assert [a.value for a in areas] == pytest.approx(
        [21157.8, 11686.2, 285769.9, 581386.2], abs=0.1
    )
    assert [a.ci95 for a in areas] == pytest.approx([6157.6, 3755.8, 15509.8, 16281.7], abs=0.1)
    assert sum(a.value for a in areas) == pytest.approx(900_000)  # = total mapped area


def test_to_dict_is_json_ready(example):
    data = json.loads(json.dumps(example.to_dict()))
    assert data["area"]["deforestation"]["mapped"] == pytest.approx(18_000)
    assert data["error_matrix"]["counts"] == COUNTS
    assert data["n_samples"] == 640 and data["unsampled_strata"] == []


def test_error_matrix_counts_map_rows_and_reference_columns():
    counts = error_matrix(["a", "a", "b", "b", "b"], ["a", "b", "b", "b", "a"], ["a", "b", "c"])
    assert counts.tolist() == [[1, 1, 0], [1, 2, 0], [0, 0, 0]]


def test_stratum_without_sample_is_left_out_and_reported():
    # Map class "water" has area but no reference sample; "grassland" is never mapped.
    classes = ["cropland", "forest", "grassland", "water"]
    counts = [[8, 1, 1, 0], [1, 4, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    result = assess_accuracy(counts, {"cropland": 60.0, "forest": 30.0, "water": 10.0}, classes)

    assert result.unsampled_strata == ["water"]
    assert result.unassessed_area == 10.0
    assert result.users_accuracy["water"].value is None
    assert result.users_accuracy["grassland"].value is None
    assert result.producers_accuracy["water"].value is None  # no reference area estimated
    # Estimates describe the 90 assessed units; with the 10 unassessed they add up to 100.
    total = sum(a.value for a in result.area.values())
    assert total + result.unassessed_area == pytest.approx(100.0)
    # W = (60/90, 30/90): cropland = 2/3 * 0.8 + 1/3 * 0.2 = 0.6 of 90 = 54 (hand-computed).
    assert result.area["cropland"].value == pytest.approx(54.0)
    assert result.area["grassland"].value == pytest.approx(2 / 3 * 0.1 * 90)
    assert result.producers_accuracy["grassland"].value == 0.0
    assert result.overall_accuracy.value == pytest.approx(2 / 3 * 0.8 + 1 / 3 * 0.8)
    assert result.overall_accuracy.se is not None
    json.dumps(result.to_dict())  # None, not NaN, where not estimable


def test_stratum_with_one_sample_gives_estimates_without_standard_errors():
    counts = [[5, 0], [0, 1]]
    result = assess_accuracy(counts, [50.0, 5.0], ["built", "forest"])
    assert result.overall_accuracy.value == pytest.approx(1.0)
    assert result.overall_accuracy.se is None and result.overall_accuracy.ci95 is None
    assert result.users_accuracy["built"].se == pytest.approx(0.0)  # n = 5: defined
    assert result.users_accuracy["forest"].se is None  # n = 1: n - 1 = 0
    assert result.area["forest"].value == pytest.approx(5.0) and result.area["forest"].se is None


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="2 x 2"):
        assess_accuracy([[1, 2, 3]], [1.0, 1.0], ["a", "b"])
    with pytest.raises(ValueError, match="unknown class"):
        assess_accuracy([[1, 0], [0, 1]], {"a": 1.0, "zzz": 2.0}, ["a", "b"])
    with pytest.raises(ValueError, match="nothing can be estimated"):
        assess_accuracy([[0, 0], [0, 0]], [1.0, 1.0], ["a", "b"])


# A design sampled in fine map classes, assessed in coarse ones: strata A1, A2 (both mapped
# crop) and F (mapped forest), N_h = 6, 4, 10 chips; labelled n_h = 3, 2, 4.
STRATA = ["A1", "A2", "F"]
STRATUM_CLASS = ["crop", "crop", "forest"]
STRATUM_COUNTS = [[2, 1], [1, 1], [1, 3]]  # columns = reference crop, forest
STRATUM_CHIPS = [6, 4, 10]


def test_strata_finer_than_map_classes_keep_their_own_weights():
    """Hand-computed: W = (0.3, 0.2, 0.5), shares of crop q = (2/3, 1/2, 1/4)."""
    result = assess_strata(
        STRATUM_COUNTS, [6.0, 4.0, 10.0], STRATUM_CLASS, ["crop", "forest"], strata=STRATA
    )
    assert result.area_proportion["crop"].value == pytest.approx(0.3 * 2 / 3 + 0.2 / 2 + 0.5 / 4)
    assert result.area["crop"].value == pytest.approx(0.425 * 20)
    assert result.overall_accuracy.value == pytest.approx(0.2 + 0.1 + 0.5 * 3 / 4)  # 0.675
    assert result.users_accuracy["crop"].value == pytest.approx((0.2 + 0.1) / 0.5)  # 0.6
    assert result.users_accuracy["forest"].value == pytest.approx(0.75)
    assert result.producers_accuracy["crop"].value == pytest.approx(0.3 / 0.425)
    assert result.producers_accuracy["forest"].value == pytest.approx(0.375 / 0.575)
    # Rows per map class: the strata of crop summed; the proportions weigh each by its own W_h.
    assert result.counts.tolist() == [[3, 2], [1, 3]]
    assert result.proportions[0].tolist() == pytest.approx([0.3, 0.2])
    assert result.mapped_area.tolist() == [10.0, 10.0]
    # Eq. 5 over the strata, no finite population correction: sum W_h^2 o_h (1 - o_h) / (n_h - 1).
    v = 0.09 * (2 / 9) / 2 + 0.04 * 0.25 / 1 + 0.25 * (3 / 16) / 3
    assert v == pytest.approx(0.035625)
    assert result.overall_accuracy.se == pytest.approx(math.sqrt(v))
    # A1 and A2 are sampled at the same rate (3/6 = 2/4), so the paper's estimator on the merged
    # class gives the same point estimate; only the variance still sees the strata.
    merged = assess_accuracy([[3, 2], [1, 3]], [10.0, 10.0], ["crop", "forest"])
    assert merged.overall_accuracy.value == pytest.approx(result.overall_accuracy.value)
    assert merged.overall_accuracy.se == pytest.approx(math.sqrt(0.25 * 0.24 / 4 + v - 0.02))


def test_chip_counts_add_the_finite_population_correction():
    """Hand-computed with f_h = 1 - n_h / N_h = (0.5, 0.5, 0.6)."""
    result = assess_strata(
        STRATUM_COUNTS,
        [6.0, 4.0, 10.0],
        STRATUM_CLASS,
        ["crop", "forest"],
        strata=STRATA,
        units=STRATUM_CHIPS,
    )
    terms = [0.09 * (2 / 9) * 0.5 / 2, 0.04 * 0.25 * 0.5 / 1, 0.25 * (3 / 16) * 0.6 / 3]
    assert terms == pytest.approx([0.005, 0.005, 0.009375])
    assert result.overall_accuracy.se == pytest.approx(math.sqrt(sum(terms)))
    # Binary classes: the crop area proportion has the same per-stratum variances.
    assert result.area_proportion["crop"].se == pytest.approx(math.sqrt(sum(terms)))
    assert result.area["crop"].se == pytest.approx(20 * math.sqrt(sum(terms)))
    # User's accuracy of crop: strata weigh 0.6 and 0.4 within the class.
    assert result.users_accuracy["crop"].se == pytest.approx(
        math.sqrt(0.36 * (2 / 9) * 0.5 / 2 + 0.16 * 0.25 * 0.5 / 1)
    )
    # Eq. 7 by strata: ((1 - P)^2 (own strata) + P^2 (the others)) / p_.crop^2.
    pa = 0.3 / 0.425
    expected = math.sqrt((1 - pa) ** 2 * (terms[0] + terms[1]) + pa**2 * terms[2]) / 0.425
    assert result.producers_accuracy["crop"].se == pytest.approx(expected)
    # The point estimates are the Horvitz-Thompson ones: each labelled chip weighs 1 / pi_h,
    # pi_h = n_h / N_h; crop area = (2 x 6/3 + 1 x 4/2 + 1 x 10/4) chips of 20.
    assert result.area_proportion["crop"].value == pytest.approx((2 * 2 + 1 * 2 + 1 * 2.5) / 20)


def test_a_census_stratum_adds_no_sampling_error_even_with_one_chip():
    result = assess_strata([[3, 1], [0, 1]], [40.0, 1.0], ["a", "b"], ["a", "b"], units=[40, 1])
    assert result.users_accuracy["b"].se == 0.0  # its only chip labelled: known exactly
    assert result.overall_accuracy.se is not None  # n = 1 no longer blocks the variance
    no_fpc = assess_strata([[3, 1], [0, 1]], [40.0, 1.0], ["a", "b"], ["a", "b"])
    assert no_fpc.overall_accuracy.se is None


def test_strata_without_labels_are_unassessed_by_name():
    result = assess_strata(
        [[2, 0], [0, 0], [0, 2]], [5.0, 3.0, 2.0], ["a", "a", "b"], ["a", "b"],
        strata=["a1", "a2", "b"], units=[5, 3, 2],
    )  # fmt: skip
    assert result.unsampled_strata == ["a2"]
    assert result.unassessed_area == 3.0
    assert sum(a.value for a in result.area.values()) + 3.0 == pytest.approx(10.0)
    with pytest.raises(ValueError, match="at least as many units as samples"):
        assess_strata([[2, 0]], [1.0], ["a"], ["a", "b"], units=[1])
