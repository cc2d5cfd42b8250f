from kedro.pipeline import Pipeline, node

from aerial_kedro.pipelines.modeling.nodes import train_classifier

# One namespace per model; each needs a block of the same name in conf/base/parameters_modeling.yml.
MODEL_NAMESPACES = ("logistic_regression", "random_forest")


def create_pipeline(**kwargs) -> Pipeline:
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
            for model in MODEL_NAMESPACES
        ),
        Pipeline([]),
    )
