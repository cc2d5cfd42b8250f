from kedro.pipeline import Pipeline, node

from aerial_kedro.models.namespaces import TRAINED_INPUTS
from aerial_kedro.pipelines.scoring.nodes import (
    collect_map_table,
    describe_map_products,
    describe_model,
    draw_map_png,
    index_map_products,
    make_chips_geojson,
    make_class_raster,
    plan_scoring,
    report_class_shares,
    run_predictions,
    score_chunks,
    validate_scoring_params,
)


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
            # The map products: one table collected from Spark, then one node per product.
            node(
                collect_map_table,
                inputs=["predictions", "chip_plan", "run", "model_info", "settings"],
                outputs=["map_table", "chip_counts"],
                name="collect_map_table",
            ),
            node(
                make_class_raster,
                inputs=["map_table", "run", "model_info", "settings"],
                # In memory for the nodes below, and saved as the COG (none for plain tiles).
                outputs=["class_raster", "class_geotiff"],
                name="make_class_raster",
            ),
            node(
                make_chips_geojson,
                inputs=["map_table", "model_info"],
                outputs="chips_geojson",
                name="make_chips_geojson",
            ),
            node(
                draw_map_png,
                inputs=["class_raster", "map_table", "chip_counts", "run", "model_info", "settings"],
                outputs="map_png",
                name="draw_map_png",
            ),
            node(
                report_class_shares,
                inputs=["map_table", "chip_counts", "class_raster", "run", "model_info", "settings"],
                outputs="class_shares",
                name="report_class_shares",
            ),
            node(
                describe_map_products,
                inputs=["class_raster", "run", "model_info"],
                outputs="stac_item",
                name="describe_map_products",
            ),
            node(
                run_predictions,
                inputs=["predictions", "run"],
                outputs="chips_geoparquet",
                name="write_chips_geoparquet",
            ),
            # Last: the saved report and STAC Item are its inputs. The index of every source
            # mapped (`score`), logging where this source's products are.
            node(
                index_map_products,
                inputs=["run", "model_info", "class_shares", "stac_item"],
                outputs="maps_index",
                name="index_map_products",
            ),
        ],
        namespace="scoring",
        inputs=set(TRAINED_INPUTS),
        parameters={"params:score_source", "params:scoring", "params:radiometry_reference"},
    )
