"""How different are two dates' class probabilities of one chip: the change score.

A chip's classifier output is a probability vector over the model's classes (EuroSAT's ten).
Comparing two dates class by class flags every field whose crop type, stubble or season
changed (AnnualCrop <-> PermanentCrop <-> HerbaceousVegetation <-> Pasture), which is not
land-use change. So both vectors are first summed into a coarse scheme whose classes survive
seasons (forest, cropland, grassland, built, water: :data:`DEFAULT_GROUPS`), and the score is a
distance between the two coarse vectors:

* ``tv`` - total variation, ``0.5 * sum |q_before - q_after|``: the probability mass that
  moved between coarse classes, in [0, 1];
* ``hellinger`` - ``sqrt(1 - sum sqrt(q_before * q_after))``, in [0, 1], more sensitive to
  mass appearing in a class that had almost none;
* ``gain:<class>`` - ``max(0, q_after[class] - q_before[class])``: directional, e.g.
  ``gain:built`` for urbanisation only.

A confidence floor then multiplies the score by 0 where either date's coarse top probability
is below the floor: an unsure map (winter fields, haze) must not report change. The measured
choice is documented in ``conf/base/parameters_change.yml``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from aerial_kedro.class_schemes import COARSE

# EuroSAT's classes grouped into five land-use classes that do not change with the season: the
# `coarse` class scheme.
DEFAULT_GROUPS: dict[str, str] = dict(COARSE)
DEFAULT_GROUP_ORDER: tuple[str, ...] = ("forest", "cropland", "grassland", "built", "water")
METHODS: tuple[str, ...] = ("tv", "hellinger")
GAIN_PREFIX = "gain:"


@dataclass(frozen=True)
class Grouping:
    """Model classes summed into coarse groups: ``coarse = probabilities @ matrix``."""

    classes: tuple[str, ...]
    groups: tuple[str, ...]
    matrix: np.ndarray  # (n_classes, n_groups), one 1 per row

    def group_of(self, class_index: int) -> int:
        return int(np.argmax(self.matrix[class_index]))

    def coarse(self, probabilities: np.ndarray) -> np.ndarray:
        """``(n, n_classes)`` probabilities -> ``(n, n_groups)`` summed per group."""
        probs = np.asarray(probabilities, dtype=np.float64)
        if probs.ndim != 2 or probs.shape[1] != len(self.classes):
            raise ValueError(
                f"probabilities of shape {probs.shape} do not match {len(self.classes)} classes"
            )
        return probs @ self.matrix


def make_grouping(
    classes: Sequence[str],
    groups: Mapping[str, str] | None = None,
    order: Sequence[str] = DEFAULT_GROUP_ORDER,
) -> Grouping:
    """Group the model's ``classes`` with ``groups`` (class -> group name).

    A class the mapping does not name is its own group, so a model already trained in the
    coarse scheme (classes ``forest``, ``built`` ...) or one with extra classes still works;
    ``groups={}`` compares the model's own classes. Groups are ordered as in ``order``, then
    the remaining ones in order of first appearance.
    """
    mapping = DEFAULT_GROUPS if groups is None else dict(groups)
    names = [mapping.get(name, name) for name in classes]
    ordered = [g for g in order if g in names]
    ordered += [g for g in dict.fromkeys(names) if g not in ordered]
    matrix = np.zeros((len(classes), len(ordered)), dtype=np.float64)
    for i, name in enumerate(names):
        matrix[i, ordered.index(name)] = 1.0
    return Grouping(tuple(classes), tuple(ordered), matrix)


def total_variation(q_before: np.ndarray, q_after: np.ndarray) -> np.ndarray:
    """Row-wise ``0.5 * sum |a - b|`` of two ``(n, k)`` probability arrays, in [0, 1]."""
    return 0.5 * np.abs(np.asarray(q_before) - np.asarray(q_after)).sum(axis=1)


def hellinger(q_before: np.ndarray, q_after: np.ndarray) -> np.ndarray:
    """Row-wise Hellinger distance ``sqrt(1 - sum sqrt(a * b))``, in [0, 1]."""
    a = np.clip(np.asarray(q_before, dtype=np.float64), 0.0, None)
    b = np.clip(np.asarray(q_after, dtype=np.float64), 0.0, None)
    affinity = np.sqrt(a * b).sum(axis=1)
    return np.sqrt(np.clip(1.0 - affinity, 0.0, 1.0))


def check_method(method: str, groups: Sequence[str] | None = None) -> str:
    """``method`` if it is ``tv``, ``hellinger`` or ``gain:<group>`` (a known group), else raise."""
    if method in METHODS:
        return method
    if method.startswith(GAIN_PREFIX) and len(method) > len(GAIN_PREFIX):
        group = method[len(GAIN_PREFIX) :]
        if groups is None or group in groups:
            return method
        raise ValueError(f"change score '{method}': no group '{group}' among {list(groups)}")
    raise ValueError(
        f"change score '{method}' is not allowed; allowed: {', '.join(METHODS)}, gain:<group>"
    )


def distance(
    q_before: np.ndarray, q_after: np.ndarray, method: str, groups: Sequence[str]
) -> np.ndarray:
    """The raw (unfloored) score of ``method`` between coarse vectors in ``groups`` order."""
    check_method(method, groups)
    if method == "tv":
        return total_variation(q_before, q_after)
    if method == "hellinger":
        return hellinger(q_before, q_after)
    k = list(groups).index(method[len(GAIN_PREFIX) :])
    return np.clip(np.asarray(q_after)[:, k] - np.asarray(q_before)[:, k], 0.0, None)


def change_scores(
    p_before: np.ndarray,
    p_after: np.ndarray,
    grouping: Grouping,
    *,
    method: str = "tv",
    confidence_floor: float = 0.0,
) -> np.ndarray:
    """Change score per chip from the two dates' ``(n, n_classes)`` probability vectors.

    Vectors are summed into ``grouping``'s coarse classes, compared with ``method``, and the
    score is set to 0 where either date's top coarse probability is below
    ``confidence_floor`` (0 = no floor).
    """
    if not 0.0 <= confidence_floor <= 1.0:
        raise ValueError(f"confidence_floor {confidence_floor} is outside [0, 1]")
    q_before = grouping.coarse(p_before)
    q_after = grouping.coarse(p_after)
    if not len(q_before):
        return np.zeros(0, dtype=np.float64)
    score = distance(q_before, q_after, method, grouping.groups)
    confident = np.minimum(q_before.max(axis=1), q_after.max(axis=1)) >= confidence_floor
    return np.where(confident, score, 0.0)
