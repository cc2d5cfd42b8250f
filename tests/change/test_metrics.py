"""Detection metrics: ROC AUC by Mann-Whitney equals counting pairs; rates by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from aerial_kedro.change.metrics import (
    average_ranks,
    detection_metrics,
    detection_scores,
    roc_auc,
)


def auc_by_pairs(truth, score) -> float:
    pos = [s for t, s in zip(truth, score, strict=True) if t]
    neg = [s for t, s in zip(truth, score, strict=True) if not t]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_average_ranks_share_ties():
    assert average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]


def test_auc_matches_pair_counting_with_ties():
    rng = np.random.default_rng(3)
    truth = rng.random(200) < 0.2
    score = np.round(rng.random(200) + truth * 0.3, 1)  # rounding makes many ties
    assert roc_auc(truth, score) == pytest.approx(auc_by_pairs(truth, score))


def test_auc_extremes_and_undefined():
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert roc_auc([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert roc_auc([0, 0], [0.1, 0.2]) is None


def test_detection_scores_by_hand():
    truth = np.array([1, 1, 1, 0, 0, 0, 0, 0], dtype=bool)
    flagged = np.array([1, 1, 0, 1, 0, 0, 0, 0], dtype=bool)
    scores = detection_scores(truth, flagged)
    assert (scores["tp"], scores["fp"], scores["fn"], scores["tn"]) == (2, 1, 1, 4)
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3)
    assert scores["false_alarm_rate"] == pytest.approx(1 / 5)


def test_nothing_flagged_has_no_precision_and_no_false_alarms():
    scores = detection_scores(np.array([1, 0, 0], dtype=bool), np.zeros(3, dtype=bool))
    assert scores["precision"] is None and scores["recall"] == 0.0
    assert scores["false_alarm_rate"] == 0.0


def test_detection_metrics_sweep_is_monotone():
    rng = np.random.default_rng(0)
    truth = rng.random(300) < 0.1
    score = rng.random(300) * 0.6 + truth * 0.4
    metrics = detection_metrics(truth, score, score >= 0.5)
    alarms = [row["false_alarm_rate"] for row in metrics["sweep"]]
    assert alarms == sorted(alarms, reverse=True)
    assert metrics["reference_changed"] == int(truth.sum())
    assert metrics["roc_auc"] > 0.8
