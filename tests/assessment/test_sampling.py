"""Sample sizes against Olofsson et al. 2014's worked example (section 5.1), computed by hand."""

from __future__ import annotations

import math

import pytest

from aerial_kedro.assessment.sampling import (
    allocate,
    design_sample,
    expected_overall_se,
    overall_sample_size,
)

# Their example map: deforestation 2 %, forest gain 1.5 %, stable forest 32 %, stable
# non-forest 64.5 % of the area; expected user's accuracies 0.7, 0.6, 0.9, 0.95; S(O) 0.01.
STRATA = {"deforestation": 4_000, "gain": 3_000, "forest": 64_000, "nonforest": 129_000}
USERS = {"deforestation": 0.7, "gain": 0.6, "forest": 0.9, "nonforest": 0.95}


def test_eq_13_gives_the_papers_641():
    by_hand = (
        0.02 * math.sqrt(0.7 * 0.3)
        + 0.015 * math.sqrt(0.6 * 0.4)
        + 0.32 * math.sqrt(0.9 * 0.1)
        + 0.645 * math.sqrt(0.95 * 0.05)
    ) / 0.01
    assert math.ceil(by_hand**2) == 641
    assert overall_sample_size(STRATA, USERS, 0.01) == 641


def test_rare_strata_get_the_minimum_and_the_rest_follows_area():
    sizes = allocate(641, STRATA, min_per_stratum=75)
    # 641 x 0.02 = 12.8 and 641 x 0.015 = 9.6 are lifted to 75; 491 left for 64,000 : 129,000.
    assert sizes == {"deforestation": 75, "gain": 75, "forest": 163, "nonforest": 328}
    assert sum(sizes.values()) == 641


def test_a_stratum_smaller_than_the_minimum_gives_all_its_chips():
    sizes = allocate(100, {"water": 3, "crop": 997}, min_per_stratum=20)
    assert sizes == {"water": 3, "crop": 97}


def test_minimums_may_exceed_the_formula():
    sizes = allocate(30, {"a": 500, "b": 500, "c": 500}, min_per_stratum=20)
    assert sizes == {"a": 20, "b": 20, "c": 20}


def test_expected_se_is_eq_5_with_the_expected_accuracies():
    design = design_sample(STRATA, USERS, 0.01, 75, seed=1)
    n = design.n_per_stratum
    by_hand = math.sqrt(
        0.02**2 * (1 - 75 / 4_000) * 0.21 / (n["deforestation"] - 1)
        + 0.015**2 * (1 - 75 / 3_000) * 0.24 / (n["gain"] - 1)
        + 0.32**2 * (1 - 163 / 64_000) * 0.09 / (n["forest"] - 1)
        + 0.645**2 * (1 - 328 / 129_000) * 0.0475 / (n["nonforest"] - 1)
    )
    assert design.expected_se == pytest.approx(by_hand)
    assert expected_overall_se(STRATA, USERS, n) == pytest.approx(by_hand)
    # Lifting the rare strata to 75 takes chips from the large ones: a little above the target.
    assert 0.01 < design.expected_se < 0.0115
    assert design.n_total == 641 and design.inclusion_probability("gain") == 75 / 3_000


def test_a_map_smaller_than_the_sample_is_labelled_whole_and_has_no_sampling_error():
    design = design_sample({"crop": 130, "forest": 4}, {"crop": 0.8, "forest": 0.8}, 0.01, 50, seed=1)
    assert design.n_formula == 1600 and design.n_per_stratum == {"crop": 130, "forest": 4}
    assert design.expected_se == 0.0
