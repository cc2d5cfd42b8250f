from kedro.pipeline import Pipeline, node

from aerial_kedro.pipelines.scoring.nodes import (
    build_map_products,
    describe_model,
    plan_scoring,
    run_predictions,
    score_chunks,
    validate_scoring_params,
)

# Datasets shared with `train` (its outputs) keep their global names.
TRAINED_INPUTS = {"scoring_model", "featurizer_onnx", "featurizer_spec"}


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                validate_scoring_params,
                inputs=["params:score_source", "params:scoring", "params:radiometry_reference"],
                outputs="settings",
                name="validate_scoring_params",
            ),
            node(
                describe_model,
                # The classifier first: when `train` never ran, its "run train first" error
                # is the one the user sees.
                inputs=["scoring_model", "featurizer_spec", "settings"],
                outputs="model_info",
                name="describe_model",
            ),
            node(
                plan_scoring,
                inputs=["settings", "model_info"],
                outputs=["chip_plan", "run", "rejected_rasters"],
                name="plan_scoring",
            ),
            node(
                score_chunks,
                inputs=[
                    "scoring_model",
                    "featurizer_onnx",
                    "featurizer_spec",
                    "chip_plan",
                    "run",
                    "completed_chunks",
                    "settings",
                    "model_info",
                ],
                outputs="predictions",
                name="score_chunks",
            ),
            node(
                build_map_products,
                inputs=["predictions", "chip_plan", "run", "model_info", "settings"],
                outputs=["class_geotiff", "chips_geojson", "map_png", "class_shares"],
                name="build_map_products",
            ),
            node(
                run_predictions,
                inputs=["predictions", "run"],
                outputs="chips_geoparquet",
                name="write_chips_geoparquet",
            ),
        ],
        namespace="scoring",
        inputs=TRAINED_INPUTS,
        parameters={"params:score_source", "params:scoring", "params:radiometry_reference"},
    )
