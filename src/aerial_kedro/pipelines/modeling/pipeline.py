from __future__ import annotations

from collections.abc import Iterable

from kedro.pipeline import Pipeline, node

from aerial_kedro.models.namespaces import MODEL_NAMESPACES
from aerial_kedro.pipelines.modeling.nodes import train_classifier


def create_pipeline(models: Iterable[str] = MODEL_NAMESPACES, **kwargs) -> Pipeline:
    """Training nodes of the given model namespaces (default: the models of `train`)."""
    template = Pipeline(
        [
            node(
                train_classifier,
                inputs=["features", "params:featurizer", "params:classifier", "params:seed"],
                outputs="classifier_model",
                name="train_classifier",
            )
        ]
    )
    return sum(
        (
            Pipeline(
                template,
                namespace=model,
                inputs={"features"},
                parameters={"params:featurizer", "params:seed"},
            )
            for model in models
        ),
        Pipeline([]),
    )
