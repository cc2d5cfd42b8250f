import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from aerial_kedro.pipelines.evaluation.metrics import classification_metrics, confusion_from_counts

CLASSES = ["AnnualCrop", "Forest", "River", "SeaLake"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.choice(CLASSES, size=500, p=[0.4, 0.3, 0.2, 0.1])
    y_pred = np.where(rng.random(500) < 0.7, y_true, rng.choice(CLASSES, size=500))
    matrix = confusion_matrix(y_true, y_pred, labels=CLASSES)
    ours = classification_metrics(matrix, CLASSES)
    precision, recall, f1, support = precision_recall_fscore_support(y_true, y_pred, labels=CLASSES, zero_division=0)
    assert ours["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert ours["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, labels=CLASSES, average="macro"))
    for index, name in enumerate(CLASSES):
        assert ours["per_class"][name]["precision"] == pytest.approx(precision[index])
        assert ours["per_class"][name]["recall"] == pytest.approx(recall[index])
        assert ours["per_class"][name]["f1"] == pytest.approx(f1[index])
        assert ours["per_class"][name]["support"] == support[index]


def test_recall_is_over_the_true_class_row():
    # 10 River tiles, 9 found; 1 SeaLake tile called River: River recall 0.9, precision 0.9.
    matrix = confusion_from_counts([("River", "River", 9), ("River", "SeaLake", 1), ("SeaLake", "River", 1)],
                                   ["River", "SeaLake"])
    metrics = classification_metrics(matrix, ["River", "SeaLake"])
    assert metrics["per_class"]["River"]["recall"] == pytest.approx(0.9)
    assert metrics["per_class"]["SeaLake"]["recall"] == pytest.approx(0.0)
    assert metrics["per_class"]["SeaLake"]["precision"] == pytest.approx(0.0)


def test_never_predicted_class_scores_zero_not_nan():
    matrix = confusion_from_counts([("Forest", "Forest", 3), ("River", "Forest", 2)], ["Forest", "River"])
    metrics = classification_metrics(matrix, ["Forest", "River"])
    assert metrics["per_class"]["River"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
