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

    @property
    def total_area(self) -> float:
        return float(self.mapped_area.sum())

    @property
    def unassessed_area(self) -> float:
        """Mapped area of strata without a sample: the estimates say nothing about it."""
        sampled = self.counts.sum(axis=1) > 0
        return float(self.mapped_area[~sampled].sum())

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
    if (n < 0).any():
        raise ValueError("counts must not be negative")
    if isinstance(mapped_area, Mapping):
        unknown = sorted(set(map(str, mapped_area)) - set(classes))
        if unknown:
            raise ValueError(f"mapped area of unknown class(es): {', '.join(unknown)}")
        areas = np.array([float(mapped_area.get(c, 0.0)) for c in classes])
    else:
        areas = np.asarray(mapped_area, dtype=float)
    if areas.shape != (k,) or (areas < 0).any():
        raise ValueError(f"mapped_area must be {k} non-negative numbers")
    n_i = n.sum(axis=1)
    unsampled = [c for c, a, m in zip(classes, areas, n_i, strict=True) if a > 0 and m == 0]
    sampled_area = np.where(n_i > 0, areas, 0.0)
    population = sampled_area.sum()
    if population <= 0:
        raise ValueError("no reference sample falls on a mapped class: nothing can be estimated")
    weights = sampled_area / population  # W_i over the assessed population
    with np.errstate(invalid="ignore", divide="ignore"):
        row_share = np.where(n_i[:, None] > 0, n / n_i[:, None], np.nan)  # n_ij / n_i.
    proportions = weights[:, None] * row_share  # eq. 4 (NaN rows: no sample)
    p = np.nan_to_num(proportions)
    # Strata that carry weight: their n_i. - 1 must be > 0 for any variance (eqs. 5-7, 10).
    weighted = weights > 0
    variance_ok = bool((n_i[weighted] >= 2).all())
    denom = np.where(n_i >= 2, n_i - 1, np.nan)

    users = {}
    for i, name in enumerate(classes):
        if n_i[i] == 0:
            users[name] = Estimate(None)
            continue
        u = n[i, i] / n_i[i]
        se = math.sqrt(u * (1 - u) / denom[i]) if n_i[i] >= 2 else None  # eq. 6
        users[name] = Estimate(float(u), se)

    overall_value = float(np.trace(p))
    overall_se = None
    if variance_ok:
        u_all = np.array([users[c].value or 0.0 for c in classes])
        terms = weights**2 * u_all * (1 - u_all) / denom  # eq. 5
        overall_se = math.sqrt(float(np.nansum(terms[weighted])))

    column = p.sum(axis=0)  # p_.j, eq. 9
    area_proportion, area = {}, {}
    share = np.nan_to_num(row_share)
    for j, name in enumerate(classes):
        se = None
        if variance_ok:
            terms = weights**2 * share[:, j] * (1 - share[:, j]) / denom  # eq. 10
            se = math.sqrt(float(np.nansum(terms[weighted])))
        area_proportion[name] = Estimate(float(column[j]), se)
        area[name] = Estimate(
            float(column[j] * population), None if se is None else se * population
        )

    producers = {}
    for j, name in enumerate(classes):
        if column[j] <= 0:
            producers[name] = Estimate(None)
            continue
        pa = p[j, j] / column[j]
        producers[name] = Estimate(
            float(pa), _producers_se(j, pa, users[name].value, sampled_area, n, n_i, variance_ok)
        )

    return AccuracyAssessment(
        classes=classes,
        counts=n.astype(np.int64),
        mapped_area=areas,
        proportions=proportions,
        overall_accuracy=Estimate(overall_value, overall_se),
        users_accuracy=users,
        producers_accuracy=producers,
        area_proportion=area_proportion,
        area=area,
        unsampled_strata=unsampled,
    )


def _producers_se(
    j: int,
    pa: float,
    ua: float | None,
    strata_area: np.ndarray,
    n: np.ndarray,
    n_i: np.ndarray,
    variance_ok: bool,
) -> float | None:
    """Eq. 7: SE of producer's accuracy of class ``j``, with ``N_i.`` = stratum sizes (areas)."""
    if not variance_ok:
        return None
    sampled = n_i > 0
    n_hat_j = float(np.sum(strata_area[sampled] / n_i[sampled] * n[sampled, j]))  # N^_.j
    if n_hat_j <= 0:
        return None
    first = 0.0
    if strata_area[j] > 0:
        # A stratum has area only when sampled (n_i. > 0), so its user's accuracy is known.
        assert ua is not None, f"class {j} has area but no user's accuracy"
        first = strata_area[j] ** 2 * (1 - pa) ** 2 * ua * (1 - ua) / (n_i[j] - 1)
    second = 0.0
    for i in np.flatnonzero(sampled):
        if i == j:
            continue
        share = n[i, j] / n_i[i]
        second += strata_area[i] ** 2 * share * (1 - share) / (n_i[i] - 1)
    return math.sqrt((first + pa**2 * second) / n_hat_j**2)
