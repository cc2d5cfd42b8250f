from kedro.pipeline import Pipeline, node

from aerial_kedro.pipelines.reference.nodes import (
    combine_features,
    cut_reference_chips,
    featurize_reference_chips,
    training_chip_ids,
)

# What cutting labelled chips depends on; they stay global parameters (shared with `assess`/`score`).
CUT_PARAMETERS = (
    "params:reference_labels",
    "params:reference_rasters",
    "params:reference_class_field",
    "params:min_cover",
    "params:class_scheme",
    "params:reference",
    "params:scoring",
    "params:seed",
    "params:reference_layer",
)
# Labels are mapped through the scheme over the indexed class folders (the `folders` scheme's
# classes are the folders found), as the tiles were.
CUT_INPUTS = (
    "params:reference_labels",
    "params:reference_rasters",
    "params:reference_class_field",
    "params:min_cover",
    "params:class_scheme",
    "tile_index",
    "params:reference",
    "params:scoring",
    "params:seed",
    "params:reference_layer",
)


def create_pipeline(**kwargs) -> Pipeline:
    """Reference labels on rasters -> labelled chips -> features, merged with the tile features."""
    return Pipeline(
        [
            node(
                cut_reference_chips,
                inputs=list(CUT_INPUTS),
                outputs=["reference_chips", "labelled_rejections", "reference_radiometry"],
                name="cut_reference_chips",
            ),
            node(
                featurize_reference_chips,
                inputs=[
                    "reference_chips",
                    "labelled_rejections",
                    "reference_radiometry",
                    "featurizer_onnx",
                    "featurizer_spec",
                    "params:scoring",
                    "params:reference",
                    "params:reference_rasters",
                ],
                outputs=["reference_features", "rejected_labels"],
                name="featurize_reference_chips",
            ),
            node(
                combine_features,
                inputs=["tile_features", "reference_features", "params:reference"],
                outputs="features",
                name="combine_features",
            ),
            node(
                training_chip_ids,
                inputs="reference_chips",
                outputs="reference_training_chips",
                name="record_training_chips",
            ),
        ],
        namespace="reference",
        inputs={"tile_features", "featurizer_onnx", "featurizer_spec", "tile_index"},
        outputs={"features", "rejected_labels", "reference_training_chips"},
        parameters=set(CUT_PARAMETERS),
    )
