"""`assess` nodes; registered after the scoring pipeline, whose outputs they read."""

from kedro.pipeline import Pipeline, node

from aerial_kedro.pipelines.assess.nodes import assess_map, plot_assessment, prepare_reference

# Outputs of the scoring pipeline (namespace "scoring") that the nodes read.
SCORING_INPUTS = {
    "scoring.predictions",
    "scoring.chip_plan",
    "scoring.run",
    "scoring.settings",
    "scoring.model_info",
}
# Top-level parameters shared with the train side, and the `assess` block.
PARAMETERS = {
    "params:reference_labels",
    "params:reference_class_field",
    "params:min_cover",
    "params:assess",
    "params:reference_layer",
}


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                prepare_reference,
                inputs=[
                    "params:reference_labels",
                    "params:reference_class_field",
                    "params:min_cover",
                    "params:assess",
                    "params:reference_layer",
                ],
                outputs=["settings", "labels"],
                name="prepare_reference",
            ),
            node(
                assess_map,
                inputs=[
                    "scoring.predictions",
                    "scoring.chip_plan",
                    "scoring.run",
                    "scoring.settings",
                    "scoring.model_info",
                    "labels",
                    "training_chips",
                    "settings",
                    "sample_design",
                ],
                outputs=["accuracy", "reference_chips", "rejected_labels", "mlflow_metrics"],
                name="assess_map",
            ),
            node(
                plot_assessment,
                inputs="accuracy",
                outputs="accuracy_plot",
                name="plot_assessment",
            ),
        ],
        namespace="assessment",
        inputs=SCORING_INPUTS,
        parameters=PARAMETERS,
    )
