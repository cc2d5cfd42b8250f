"""Accuracy and area estimates from a stratified sample, after Olofsson et al. (2014).

Olofsson, Foody, Herold, Stehman, Woodcock, Wulder, "Good practices for estimating area and
assessing accuracy of land change", Remote Sensing of Environment 148 (2014) 42-57.

Why not just count pixels per class? A map's class areas are biased by its errors: a class
that is often confused with a big one gains (or loses) area. With a sample of reference labels
drawn in strata = map classes, the error matrix of sample counts ``n_ij`` (row ``i`` = map
class, column ``j`` = reference class) and the mapped area ``A_i`` of each map class give
unbiased estimates. With ``W_i = A_i / A`` and ``n_i. = sum_j n_ij``:

* eq. 4  ``p_ij = W_i n_ij / n_i.`` - the error matrix in proportions of area;
* eq. 1  overall accuracy ``O = sum_j p_jj``;
* eq. 2  user's accuracy ``U_i = p_ii / p_i.`` (``p_i. = W_i``);
* eq. 3  producer's accuracy ``P_j = p_jj / p_.j``;
* eq. 9  area proportion of reference class ``k``: ``p_.k = sum_i W_i n_ik / n_i.``;
* eq. 10 its standard error ``sqrt(sum_i W_i^2 (n_ik/n_i.)(1 - n_ik/n_i.) / (n_i. - 1))``;
* eq. 5-7 standard errors of O, U_i and P_j; areas ``A * p_.k`` and 95 % CIs ``1.96 SE``.

:func:`assess_strata` is the same estimator when strata and map classes differ (Stehman 2014,
"Estimating area and map accuracy for stratified random sampling when the strata are different
from the map classes", IJRS 35, 4923-4939): a sample drawn in fine map classes (AnnualCrop,
PermanentCrop ...) assessed in coarse ones (cropland ...). Every estimate is a sum over strata
``h`` of ``W_h`` times a sample mean of stratum ``h``, so each stratum keeps its own weight and
sampling rate; merging the strata first would weigh them wrongly. With one stratum per map
class and no finite population correction it is eqs. 1-10 exactly (:func:`assess_accuracy`).
Given the number of sampling units ``N_h`` of each stratum (chips), each variance term takes
the finite population correction ``1 - n_h / N_h``: a stratum labelled unit by unit adds none.

Cases the paper does not need but real maps produce: a map class with area but no sample,
a class with a sample of one (no variance estimate), a reference class the map never shows.
A value that cannot be estimated is ``None``, never a crash or a silent 0:

* a stratum with mapped area but no sample cannot be estimated at all: it is left out of the
  population the estimates describe (reported as ``unassessed_area`` / ``unsampled_strata``),
  so the estimated areas plus the unassessed area add up to the mapped area;
* a stratum with a single sample gives estimates but no standard errors (``n_i. - 1 = 0``);
* user's accuracy needs samples in the stratum, producer's accuracy an estimated reference
  area above zero.

Plain numpy; no Spark, no Kedro.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Z95 = 1.96


@dataclass(frozen=True)
class Estimate:
    """An estimate with its standard error (None when it cannot be estimated)."""

    value: float | None
    se: float | None = None

    @property
    def ci95(self) -> float | None:
        """Half-width of the 95 % confidence interval, ``1.96 SE``."""
        return None if self.se is None else Z95 * self.se

    def to_dict(self) -> dict[str, float | None]:
        return {"estimate": self.value, "se": self.se, "ci95": self.ci95}


@dataclass(frozen=True)
class AccuracyAssessment:
    """Olofsson et al. (2014) estimates for one map and one sample of reference labels."""

    classes: list[str]
    counts: np.ndarray  # n_ij, rows = map class (stratum), columns = reference class
    mapped_area: np.ndarray  # A_i per map class, in the caller's unit
    proportions: np.ndarray  # p_ij (eq. 4) over the assessed population; NaN rows = unsampled
    overall_accuracy: Estimate
    users_accuracy: dict[str, Estimate]
    producers_accuracy: dict[str, Estimate]
    area_proportion: dict[str, Estimate]  # p_.k (eq. 9, 10) of the assessed population
    area: dict[str, Estimate]  # A_assessed * p_.k
    unsampled_strata: list[str]
    unassessed_area: (
        float  # mapped area of strata without a sample: the estimates say nothing of it
    )

    @property
    def total_area(self) -> float:
        return float(self.mapped_area.sum())

    def to_dict(self) -> dict[str, Any]:
        """Plain values (JSON-ready): proportions as nested lists, None where not estimable."""
        return {
            "classes": list(self.classes),
            "overall_accuracy": self.overall_accuracy.to_dict(),
            "users_accuracy": {k: v.to_dict() for k, v in self.users_accuracy.items()},
            "producers_accuracy": {k: v.to_dict() for k, v in self.producers_accuracy.items()},
            "area_proportion": {k: v.to_dict() for k, v in self.area_proportion.items()},
            "area": {
                k: {**v.to_dict(), "mapped": float(self.mapped_area[i])}
                for i, (k, v) in enumerate(self.area.items())
            },
            "error_matrix": {
                "rows": "map class (stratum)",
                "columns": "reference class",
                "counts": self.counts.astype(int).tolist(),
                "proportions": [
                    [None if math.isnan(p) else float(p) for p in row] for row in self.proportions
                ],
            },
            "n_samples": int(self.counts.sum()),
            "total_area": self.total_area,
            "unassessed_area": self.unassessed_area,
            "unsampled_strata": list(self.unsampled_strata),
        }


def error_matrix(
    map_classes: Iterable[str], reference_classes: Iterable[str], classes: Sequence[str]
) -> np.ndarray:
    """Sample counts ``n_ij``: row = map class, column = reference class, in ``classes`` order."""
    index = {name: position for position, name in enumerate(classes)}
    counts = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for mapped, reference in zip(map_classes, reference_classes, strict=True):
        counts[index[mapped], index[reference]] += 1
    return counts


def assess_accuracy(
    counts: Sequence[Sequence[int]] | np.ndarray,
    mapped_area: Sequence[float] | Mapping[str, float] | np.ndarray,
    classes: Sequence[str],
) -> AccuracyAssessment:
    """Estimate accuracy and class areas from sample counts and mapped areas (Olofsson 2014).

    ``counts[i][j]`` = samples mapped as ``classes[i]`` whose reference class is ``classes[j]``;
    ``mapped_area`` = area of each map class (a sequence in ``classes`` order or a mapping;
    missing classes have area 0) in any unit - areas come back in the same unit. The samples
    of each map class are assumed to be a simple random sample of it (stratified random
    sampling with map classes as strata).
    """
    classes = [str(c) for c in classes]
    n = np.asarray(counts, dtype=float)
    k = len(classes)
    if n.shape != (k, k):
        raise ValueError(f"counts must be {k} x {k} for {k} classes, got shape {n.shape}")
    if isinstance(mapped_area, Mapping):
        unknown = sorted(set(map(str, mapped_area)) - set(classes))
        if unknown:
            raise ValueError(f"mapped area of unknown class(es): {', '.join(unknown)}")
        areas = np.array([float(mapped_area.get(c, 0.0)) for c in classes])
    else:
        areas = np.asarray(mapped_area, dtype=float)
    return assess_strata(n, areas, classes, classes)


def assess_strata(
    counts: Sequence[Sequence[int]] | np.ndarray,
    stratum_area: Sequence[float] | np.ndarray,
    stratum_class: Sequence[str],
    classes: Sequence[str],
    *,
    strata: Sequence[str] | None = None,
    units: Sequence[int] | None = None,
) -> AccuracyAssessment:
    """Estimates from a stratified random sample whose strata need not be the map classes.

    ``counts[h][k]`` = samples of stratum ``h`` whose reference class is ``classes[k]``;
    ``stratum_area[h]`` its area (any unit; areas come back in it); ``stratum_class[h]`` the
    map class (one of ``classes``) of every unit of stratum ``h``; ``strata`` their names (for
    ``unsampled_strata``; default the map classes). ``units[h]`` = sampling units of the
    stratum (``N_h``) turns on the finite population correction. The error matrix and the
    mapped areas come back per map class (strata of one class summed).
    """
    classes = [str(c) for c in classes]
    n = np.asarray(counts, dtype=float)
    areas = np.asarray(stratum_area, dtype=float)
    names = [str(s) for s in (strata if strata is not None else stratum_class)]
    h_count, k = len(names), len(classes)
    if n.shape != (h_count, k):
        raise ValueError(f"counts must be {h_count} x {k} (strata x classes), got {n.shape}")
    if (n < 0).any():
        raise ValueError("counts must not be negative")
    if areas.shape != (h_count,) or (areas < 0).any():
        raise ValueError(f"mapped_area must be {h_count} non-negative numbers")
    unknown = sorted(set(map(str, stratum_class)) - set(classes))
    if len(stratum_class) != h_count or unknown:
        raise ValueError(f"each stratum needs a map class among the classes; unknown: {unknown}")
    n_h = n.sum(axis=1)
    fpc = np.ones(h_count)
    if units is not None:
        size = np.asarray(units, dtype=float)
        if size.shape != (h_count,) or (n_h > size).any():
            raise ValueError("units must give each stratum at least as many units as samples")
        fpc = 1 - np.divide(n_h, size, out=np.zeros(h_count), where=size > 0)

    sampled = n_h > 0
    unsampled = [s for s, a, m in zip(names, areas, n_h, strict=True) if a > 0 and m == 0]
    sampled_area = np.where(sampled, areas, 0.0)
    population = sampled_area.sum()
    if population <= 0:
        raise ValueError("no reference sample falls on a mapped class: nothing can be estimated")
    weights = sampled_area / population  # W_h over the assessed population
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(sampled[:, None], n / n_h[:, None], np.nan)  # n_hk / n_h.
        # Var of a stratum's sample mean of a 0/1 variable with mean p is p (1 - p) * this:
        # f_h / (n_h - 1); 0 for a census stratum, NaN (not estimable) for n_h < 2.
        spread = np.where(fpc <= 0, 0.0, np.where(n_h >= 2, fpc / (n_h - 1), np.nan))
    q = np.nan_to_num(share)
    member = np.zeros((h_count, k), dtype=bool)  # member[h, i]: stratum h is mapped as class i
    member[np.arange(h_count), [classes.index(str(c)) for c in stratum_class]] = True
    correct = np.where(sampled, q[member], np.nan)  # o_h: share whose reference = its map class
    weighted = weights > 0
    variance_ok = not np.isnan(spread[weighted]).any()

    def variance(coefficients: np.ndarray, p: np.ndarray, among: np.ndarray) -> float:
        """sum_h c_h^2 f_h p_h (1 - p_h) / (n_h - 1) over the strata ``among``."""
        return float(np.sum((coefficients**2 * spread * p * (1 - p))[among]))

    class_sampled = (member & sampled[:, None]).any(axis=0)
    proportions = member.T.astype(float) @ (weights[:, None] * q)  # p_ij, eq. 4 by strata
    proportions[~class_sampled] = np.nan
    p = np.nan_to_num(proportions)

    users = {}
    for i, name in enumerate(classes):
        own = member[:, i] & sampled
        if not own.any():
            users[name] = Estimate(None)
            continue
        class_weight = weights[own].sum()
        # Within a class, strata weigh by area (by sample size only if the class has no area).
        within = np.zeros(h_count)
        within[own] = weights[own] / class_weight if class_weight > 0 else n_h[own] / n_h[own].sum()
        u = float(np.sum(within[own] * correct[own]))
        se = None  # eq. 6, per stratum of the class
        if not np.isnan(spread[own]).any():
            se = math.sqrt(variance(within, np.nan_to_num(correct), own))
        users[name] = Estimate(u, se)

    overall_se = None
    if variance_ok:  # eq. 5
        overall_se = math.sqrt(variance(weights, np.nan_to_num(correct), weighted))

    column = p.sum(axis=0)  # p_.k, eq. 9
    area_proportion, area = {}, {}
    for j, name in enumerate(classes):
        se = math.sqrt(variance(weights, q[:, j], weighted)) if variance_ok else None  # eq. 10
        area_proportion[name] = Estimate(float(column[j]), se)
        area[name] = Estimate(
            float(column[j] * population), None if se is None else se * population
        )

    producers = {}
    for j, name in enumerate(classes):
        if column[j] <= 0:
            producers[name] = Estimate(None)
            continue
        pa = float(p[j, j] / column[j])
        se = None
        if variance_ok:  # eq. 7: the ratio p_jj / p_.j, its terms by strata
            own = member[:, j] & weighted
            others = ~member[:, j] & weighted
            terms = (1 - pa) ** 2 * variance(weights, q[:, j], own) + pa**2 * variance(
                weights, q[:, j], others
            )
            se = math.sqrt(terms) / column[j]
        producers[name] = Estimate(pa, se)

    return AccuracyAssessment(
        classes=classes,
        counts=(member.T.astype(np.int64) @ n.astype(np.int64)),
        mapped_area=member.T.astype(float) @ areas,
        proportions=proportions,
        overall_accuracy=Estimate(float(np.nansum(weights * correct)), overall_se),
        users_accuracy=users,
        producers_accuracy=producers,
        area_proportion=area_proportion,
        area=area,
        unsampled_strata=unsampled,
        unassessed_area=float(areas[~sampled].sum()),
    )
