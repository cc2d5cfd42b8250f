"""A stratified random sample of a map's chips for accuracy assessment (Olofsson et al. 2014).

The strata are the mapped classes. The total sample size comes from the expected user's
accuracy of each class and a target standard error of overall accuracy (their eq. 13); every
stratum gets at least a minimum (rare classes would otherwise get a handful of chips and no
usable user's accuracy), the rest is shared in proportion to the mapped area. Estimates from a
sample drawn this way, with each chip's inclusion probability n_h / N_h, are unbiased: what
labels picked by hand cannot give.

Olofsson, P., Foody, G. M., Herold, M., Stehman, S. V., Woodcock, C. E., Wulder, M. A. (2014).
Good practices for estimating area and assessing accuracy of land change. Remote Sensing of
Environment 148, 42-57.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class SampleDesign:
    """Sizes of a stratified random sample of chips; ``strata`` maps class -> chips mapped."""

    strata: dict[str, int]
    expected_users_accuracy: dict[str, float]
    target_se: float
    min_per_stratum: int
    n_formula: int
    n_per_stratum: dict[str, int]
    expected_se: float
    seed: int

    @property
    def n_total(self) -> int:
        return sum(self.n_per_stratum.values())

    def inclusion_probability(self, stratum: str) -> float:
        return self.n_per_stratum[stratum] / self.strata[stratum]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "n_total": self.n_total, "weights": weights(self.strata)}


def weights(strata: Mapping[str, int]) -> dict[str, float]:
    """Each stratum's share of the mapped area (chips are equal in area)."""
    total = sum(strata.values())
    return {name: count / total for name, count in strata.items()}


def overall_sample_size(
    strata: Mapping[str, int], users_accuracy: Mapping[str, float], target_se: float
) -> int:
    """Olofsson et al. 2014 eq. 13: n = (sum_i W_i S_i / S(O))^2 with S_i = sqrt(U_i (1 - U_i)),
    rounded up."""
    spread = sum(
        w * math.sqrt(users_accuracy[name] * (1 - users_accuracy[name]))
        for name, w in weights(strata).items()
    )
    return math.ceil((spread / target_se) ** 2)


def allocate(n_total: int, strata: Mapping[str, int], min_per_stratum: int) -> dict[str, int]:
    """``n_total`` chips shared in proportion to area, each stratum at least ``min_per_stratum``
    (and at most the chips it has). Strata lifted to the minimum leave the others the rest, in
    proportion to their area; the result may exceed ``n_total`` when the minimums alone do."""
    fixed: dict[str, int] = {}
    while True:
        free = {name: count for name, count in strata.items() if name not in fixed}
        left = max(n_total - sum(fixed.values()), 0)
        area = sum(free.values())
        share = {name: left * count / area for name, count in free.items()} if area else {}
        small = {name for name, n in share.items() if n < min(min_per_stratum, strata[name])}
        if not small:
            break
        fixed.update({name: min(min_per_stratum, strata[name]) for name in small})
    sizes = {**fixed, **_round_keeping_total(share, left)}
    return {name: min(sizes[name], strata[name]) for name in strata}


def _round_keeping_total(shares: Mapping[str, float], total: int) -> dict[str, int]:
    """Largest-remainder rounding: integers summing to ``round(total)``."""
    floors = {name: math.floor(value) for name, value in shares.items()}
    missing = round(total) - sum(floors.values()) if shares else 0
    by_remainder = sorted(shares, key=lambda name: (floors[name] - shares[name], name))
    for name in by_remainder[:missing]:
        floors[name] += 1
    return floors


def expected_overall_se(
    strata: Mapping[str, int], users_accuracy: Mapping[str, float], n_per_stratum: Mapping[str, int]
) -> float:
    """The standard error of overall accuracy the sample should reach if the user's accuracies are
    as expected: Olofsson et al. 2014 eq. 5, V(O) = sum_i W_i^2 U_i (1 - U_i) / (n_i - 1), with
    the finite population correction (1 - n_i / N_i) their large-map formula leaves out: a
    stratum labelled chip by chip (a small map) adds no sampling error."""
    variance = sum(
        w**2
        * (1 - n_per_stratum[name] / strata[name])
        * users_accuracy[name]
        * (1 - users_accuracy[name])
        / max(n_per_stratum[name] - 1, 1)
        for name, w in weights(strata).items()
    )
    return math.sqrt(variance)


def design_sample(
    strata: Mapping[str, int],
    users_accuracy: Mapping[str, float],
    target_se: float,
    min_per_stratum: int,
    seed: int,
) -> SampleDesign:
    """The sample sizes for a map with ``strata`` (class -> chips mapped)."""
    n_formula = overall_sample_size(strata, users_accuracy, target_se)
    n_per_stratum = allocate(n_formula, strata, min_per_stratum)
    return SampleDesign(
        strata=dict(strata),
        expected_users_accuracy={name: users_accuracy[name] for name in strata},
        target_se=target_se,
        min_per_stratum=min_per_stratum,
        n_formula=n_formula,
        n_per_stratum=n_per_stratum,
        expected_se=expected_overall_se(strata, users_accuracy, n_per_stratum),
        seed=seed,
    )
