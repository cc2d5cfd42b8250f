from __future__ import annotations

from collections.abc import Iterable

from kedro.pipeline import Pipeline, node

from aerial_kedro.pipelines.modeling.nodes import train_classifier

# One namespace per model; each needs a block of the same name in conf/base/parameters_modeling.yml.
# These run in `train`: plain Spark ML, so they work on any Spark 3.3+ without extra jars.
MODEL_NAMESPACES = ("logistic_regression", "random_forest")

# Opt-in models whose estimators live in SynapseML's jars (Spark 3.5 only, jars fetched by
# scripts/fetch_synapseml_jars.sh): trained and evaluated by the separate `lightgbm` pipeline,
# e.g. `kedro run --pipelines=train,lightgbm`, or `--pipelines=lightgbm` on existing features.
SYNAPSEML_MODEL_NAMESPACES = ("lightgbm",)


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
