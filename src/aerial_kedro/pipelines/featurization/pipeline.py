from kedro.pipeline import Pipeline, node

from aerial_kedro.pipelines.featurization.nodes import export_featurizer, featurize_tiles


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                export_featurizer,
                inputs=["params:featurizer", "params:featurization"],
                outputs=["featurizer_onnx", "featurizer_spec"],
                name="export_featurizer",
            ),
            node(
                featurize_tiles,
                inputs=["raw_tiles", "tile_index", "featurizer_onnx", "featurizer_spec", "params:featurization"],
                outputs=["tile_features", "rejected_tiles"],
                name="featurize_tiles",
            ),
        ],
        namespace="featurization",
        inputs={"raw_tiles", "tile_index"},
        outputs={"featurizer_onnx", "featurizer_spec", "tile_features", "rejected_tiles"},
        parameters={"params:featurizer", "params:featurization"},
    )
