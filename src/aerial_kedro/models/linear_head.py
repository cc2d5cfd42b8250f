"""A trained model's classifier as numpy, when it is a linear map plus softmax (logistic regression).

Scoring then classifies inside the Python worker, right after the network, and a chip leaves the
worker as class probabilities instead of ~2,000 features crossing Arrow into the JVM for one
matrix product. The saved Spark ML ``PipelineModel`` stays the model: :func:`head_of` reads its
stages (:mod:`.contract`) and reproduces each one's arithmetic, or says why it cannot, and the
caller keeps the JVM path then.

What is reproduced, in float64 as the JVM computes (features arrive as float32 and are widened,
as ``array_to_vector`` does):

* ``StandardScalerModel``: ``(x - mean) * (1 / std)``, a feature with ``std == 0`` giving 0;
* ``LogisticRegressionModel``, multinomial: margins ``W x + b``, softmax with the largest margin
  subtracted, scaled by ``1 / sum``; the prediction is the first largest probability;
* binomial (one row of coefficients): margin ``m = w.x + b``, ``p0 = 1 / (1 + exp(m))``,
  ``p1 = 1 - p0``; class 1 when ``p1 > threshold``;
* ``IndexToString``: class index -> its label.

The sums run in another order than the JVM's BLAS, so the probabilities agree to about 1e-15
in float64, hence to the float32 rounding the prediction rows keep (tests/models).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pyspark.ml import PipelineModel
from pyspark.ml.classification import LogisticRegressionModel
from pyspark.ml.feature import IndexToString, StandardScalerModel, StringIndexerModel

from aerial_kedro.models.features import FEATURES_COLUMN


@dataclass(frozen=True)
class Standardization:
    """A fitted StandardScaler: ``(x - shift) * scale``; either may be absent (withMean/withStd off)."""

    shift: np.ndarray | None  # (features,) float64
    scale: np.ndarray | None  # (features,) float64, 0 where the training std was 0

    def apply(self, features: np.ndarray) -> np.ndarray:
        out = features
        if self.shift is not None:
            out = out - self.shift
        if self.scale is not None:
            out = out * self.scale
        return out


@dataclass(frozen=True)
class LinearHead:
    """The classifier stages of a PipelineModel as arrays: probabilities and labels from features."""

    coefficients: np.ndarray  # (classes, features), or (1, features) for a binomial model
    intercepts: np.ndarray  # (classes,) or (1,)
    labels: tuple[str, ...]  # class index -> label, the IndexToString stage's
    standardization: Standardization | None = None
    threshold: float = 0.5  # binomial only: class 1 when its probability is above it

    @property
    def binomial(self) -> bool:
        return self.coefficients.shape[0] == 1

    @property
    def n_features(self) -> int:
        return int(self.coefficients.shape[1])

    def describe(self) -> str:
        family = "binomial" if self.binomial else "multinomial"
        scaled = ", standardized" if self.standardization is not None else ""
        return f"logistic regression ({family}, {len(self.labels)} classes, {self.n_features} features{scaled})"

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(rows, classes) float64 probabilities of a (rows, features) batch, as the JVM computes them."""
        x = np.asarray(features, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"features of shape {x.shape}: the model takes {self.n_features} per row")
        if self.standardization is not None:
            x = self.standardization.apply(x)
        margins = x @ self.coefficients.T + self.intercepts
        if self.binomial:
            first = 1.0 / (1.0 + np.exp(margins[:, 0]))
            return np.column_stack([first, 1.0 - first])
        exps = np.exp(margins - margins.max(axis=1, keepdims=True))
        return exps * (1.0 / exps.sum(axis=1, keepdims=True))

    def predictions(self, probabilities: np.ndarray) -> np.ndarray:
        """Class index per row of :meth:`probabilities`' output (int32)."""
        if self.binomial:
            return (probabilities[:, 1] > self.threshold).astype(np.int32)
        return np.argmax(probabilities, axis=1).astype(np.int32)


@dataclass(frozen=True)
class HeadChoice:
    """Where a model's classifier runs: ``head`` set = in the Python worker; else why not."""

    head: LinearHead | None
    reason: str

    @property
    def in_worker(self) -> bool:
        return self.head is not None


def head_of(model: PipelineModel) -> HeadChoice:
    """The model's classifier as a :class:`LinearHead`, or the reason the JVM must apply it.

    ``model`` is the whole trained PipelineModel (label indexer first) or its predictor (without
    it, :func:`aerial_kedro.models.contract.predictor`). Every stage must be one this module
    reproduces, wired column to column as ``make_training_pipeline`` builds them.
    """
    stages = list(model.stages)
    if stages and isinstance(stages[0], StringIndexerModel):
        stages = stages[1:]
    names = " -> ".join(type(stage).__name__ for stage in stages)
    if len(stages) not in (2, 3):
        return HeadChoice(None, f"stages {names}: not [StandardScaler ->] classifier -> IndexToString")
    *front, classifier, to_label = stages
    if not isinstance(classifier, LogisticRegressionModel):
        return HeadChoice(None, f"{type(classifier).__name__} is not a linear model")
    if not isinstance(to_label, IndexToString):
        return HeadChoice(None, f"last stage {type(to_label).__name__} is not IndexToString")
    column = FEATURES_COLUMN
    standardization = None
    if front:
        scaler = front[0]
        if not isinstance(scaler, StandardScalerModel):
            return HeadChoice(None, f"stage {type(scaler).__name__} before the classifier is not understood")
        if scaler.getInputCol() != column:
            return HeadChoice(None, f"the scaler reads '{scaler.getInputCol()}', not '{column}'")
        standardization = _standardization(scaler)
        column = scaler.getOutputCol()
    if classifier.getFeaturesCol() != column:
        return HeadChoice(None, f"the classifier reads '{classifier.getFeaturesCol()}', not '{column}'")
    if to_label.getInputCol() != classifier.getPredictionCol():
        return HeadChoice(None, "IndexToString does not read the classifier's prediction")
    if not to_label.isDefined(to_label.labels) or not to_label.getLabels():
        return HeadChoice(None, "IndexToString takes its labels from column metadata")
    labels = tuple(to_label.getLabels())
    coefficients = np.asarray(classifier.coefficientMatrix.toArray(), dtype=np.float64)
    intercepts = np.asarray(classifier.interceptVector.toArray(), dtype=np.float64)
    binomial = coefficients.shape[0] == 1
    if not binomial and coefficients.shape[0] != classifier.numClasses:
        return HeadChoice(None, f"{coefficients.shape[0]} coefficient rows for {classifier.numClasses} classes")
    if not binomial and classifier.isSet(classifier.thresholds):
        return HeadChoice(None, "multinomial thresholds are set (predictions scaled by them)")
    if len(labels) < classifier.numClasses:
        return HeadChoice(None, f"{len(labels)} labels for {classifier.numClasses} classes")
    if standardization is not None and _length(standardization) not in (None, coefficients.shape[1]):
        return HeadChoice(None, "the scaler and the classifier disagree on the number of features")
    head = LinearHead(
        coefficients=coefficients,
        intercepts=intercepts,
        labels=labels,
        standardization=standardization,
        threshold=float(classifier.getThreshold()) if binomial else 0.5,
    )
    return HeadChoice(head, head.describe())


def _standardization(scaler: StandardScalerModel) -> Standardization:
    shift = np.asarray(scaler.mean.toArray(), dtype=np.float64) if scaler.getWithMean() else None
    scale = None
    if scaler.getWithStd():
        std = np.asarray(scaler.std.toArray(), dtype=np.float64)
        # Spark multiplies by the inverse, 0 for a constant feature: the same products here.
        with np.errstate(divide="ignore"):
            scale = np.where(std == 0.0, 0.0, 1.0 / std)
    return Standardization(shift=shift, scale=scale)


def _length(standardization: Standardization) -> int | None:
    for values in (standardization.shift, standardization.scale):
        if values is not None:
            return len(values)
    return None
