from kedro.pipeline import Pipeline, node

from aerial_kedro.pipelines.ingestion.nodes import build_tile_index


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                build_tile_index,
                inputs=["raw_tiles", "params:ingestion", "params:seed"],
                outputs="tile_index",
                name="build_tile_index",
            )
        ],
        namespace="ingestion",
        inputs={"raw_tiles"},
        outputs={"tile_index"},
        parameters={"params:ingestion", "params:seed"},
    )
