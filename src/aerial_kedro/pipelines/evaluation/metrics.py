"""Classification metrics from a confusion matrix (rows = true class, columns = predicted)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np


def confusion_from_counts(counts: Iterable[tuple[str, str, int]], classes: Sequence[str]) -> np.ndarray:
    """Confusion matrix from (true label, predicted label, count) triples."""
    position = {name: index for index, name in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=np.int64)
    for true_label, predicted_label, count in counts:
        matrix[position[true_label], position[predicted_label]] += int(count)
    return matrix


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros_like(numerator, dtype=float), where=denominator > 0)


def classification_metrics(matrix: np.ndarray, classes: Sequence[str]) -> dict:
    """Accuracy, macro-F1 and per-class precision/recall/F1/support.

    Recall is ``TP / (TP + FN)`` over the *row* (true class); precision is over the column.
    A class never predicted or never present scores 0 (sklearn's ``zero_division=0``).
    """
    matrix = np.asarray(matrix, dtype=float)
    true_positives = np.diag(matrix)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    precision = _safe_divide(true_positives, predicted)
    recall = _safe_divide(true_positives, support)
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    total = matrix.sum()
    return {
        "accuracy": float(true_positives.sum() / total) if total else 0.0,
        "macro_f1": float(f1.mean()) if len(classes) else 0.0,
        "n_test": int(total),
        "per_class": {
            name: {
                "precision": float(precision[index]),
                "recall": float(recall[index]),
                "f1": float(f1[index]),
                "support": int(support[index]),
            }
            for index, name in enumerate(classes)
        },
    }
