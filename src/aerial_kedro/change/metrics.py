"""Detection metrics of a change score against reference change labels (numpy only).

ROC AUC is the Mann-Whitney U statistic: the probability that a randomly chosen changed chip
scores higher than a randomly chosen unchanged one (ties count one half), computed from
average ranks, so it needs no scikit-learn at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``, tied values sharing the mean of their ranks."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    sorted_values = values[order]
    # Boundaries of runs of equal values.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + 1 + end) / 2.0
    return ranks


def roc_auc(
    truth: Sequence[bool] | np.ndarray, score: Sequence[float] | np.ndarray
) -> float | None:
    """Area under the ROC curve of ``score`` for the binary ``truth``; None without both classes."""
    y = np.asarray(truth, dtype=bool)
    s = np.asarray(score, dtype=np.float64)
    if y.shape != s.shape:
        raise ValueError(f"truth {y.shape} and score {s.shape} differ in shape")
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = average_ranks(s)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def confusion_counts(truth: np.ndarray, predicted: np.ndarray) -> dict[str, int]:
    """True/false positives/negatives of a binary prediction."""
    y = np.asarray(truth, dtype=bool)
    p = np.asarray(predicted, dtype=bool)
    return {
        "tp": int((y & p).sum()),
        "fp": int((~y & p).sum()),
        "fn": int((y & ~p).sum()),
        "tn": int((~y & ~p).sum()),
    }


def detection_scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Precision, recall, F1 and false-alarm rate (changed among truly unchanged chips).

    A ratio whose denominator is 0 is None (e.g. precision when nothing was flagged).
    """
    counts = confusion_counts(truth, predicted)
    tp, fp, fn, tn = counts["tp"], counts["fp"], counts["fn"], counts["tn"]
    precision = _ratio(tp, tp + fp)
    recall = _ratio(tp, tp + fn)
    f1 = (
        2 * precision * recall / (precision + recall)
        if precision is not None and recall is not None and precision + recall > 0
        else (0.0 if precision is not None and recall is not None else None)
    )
    return {
        **counts,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "false_alarm_rate": _ratio(fp, fp + tn),
    }


def threshold_sweep(
    truth: np.ndarray, score: np.ndarray, thresholds: Sequence[float]
) -> list[dict[str, Any]]:
    """:func:`detection_scores` of ``score >= t`` for each threshold ``t``."""
    y = np.asarray(truth, dtype=bool)
    s = np.asarray(score, dtype=np.float64)
    return [{"threshold": float(t), **detection_scores(y, s >= t)} for t in thresholds]


def detection_metrics(
    truth: np.ndarray,
    score: np.ndarray,
    predicted: np.ndarray,
    thresholds: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
) -> dict[str, Any]:
    """Everything a change run reports against a reference.

    ``truth`` = reference changed chips, ``score`` = change score, ``predicted`` = the
    pipeline's ``changed`` flag (which may require more than ``score >= threshold``).
    """
    y = np.asarray(truth, dtype=bool)
    return {
        "chips": int(len(y)),
        "reference_changed": int(y.sum()),
        "reference_unchanged": int((~y).sum()),
        "roc_auc": roc_auc(y, score),
        **detection_scores(y, predicted),
        "sweep": threshold_sweep(y, score, thresholds),
    }
