from collections.abc import Iterable

from kedro.pipeline import Pipeline, node

from aerial_kedro.models.namespaces import MODEL_NAMESPACES
from aerial_kedro.pipelines.evaluation.nodes import (
    evaluate_predictions,
    predict_test_split,
    summarize_metrics,
)


def create_pipeline(models: Iterable[str] = MODEL_NAMESPACES, summarize: bool = True, **kwargs) -> Pipeline:
    """Per-model evaluation nodes, plus (``summarize``) the run summary over ``models``."""
    models = tuple(models)
    template = Pipeline(
        [
            node(
                predict_test_split,
                inputs=["classifier_model", "features", "params:featurizer"],
                outputs="test_predictions",
                name="predict_test_split",
            ),
            node(
                evaluate_predictions,
                inputs=["test_predictions", "classifier_model", "params:featurizer"],
                outputs=["metrics", "confusion_matrix", "confusion_matrix_plot"],
                name="evaluate_predictions",
            ),
        ]
    )
    per_model = [
        Pipeline(template, namespace=model, inputs={"features"}, parameters={"params:featurizer"})
        for model in models
    ]
    if not summarize:
        return Pipeline(per_model)
    summary = node(
        summarize_metrics,
        inputs={
            "featurizer": "params:featurizer",
            "tiles_dir": "params:tiles_dir",
            **{model: f"{model}.metrics" for model in models},
        },
        outputs="metrics_summary",
        name="summarize_metrics",
        namespace="evaluation",
    )
    return Pipeline([*per_model, Pipeline([summary])])
