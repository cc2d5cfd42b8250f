from kedro.pipeline import Pipeline, node

from aerial_kedro.pipelines.ingestion.nodes import build_tile_index, describe_class_scheme


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                build_tile_index,
                inputs=["raw_tiles", "params:ingestion", "params:seed", "params:class_scheme"],
                outputs="tile_index",
                name="build_tile_index",
            ),
            node(
                describe_class_scheme,
                inputs=["params:class_scheme", "tile_index"],
                outputs="class_scheme",
                name="describe_class_scheme",
            ),
        ],
        namespace="ingestion",
        inputs={"raw_tiles"},
        outputs={"tile_index", "class_scheme"},
        parameters={"params:ingestion", "params:seed", "params:class_scheme"},
    )
