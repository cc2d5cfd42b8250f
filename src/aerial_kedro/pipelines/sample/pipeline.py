"""`sample` nodes; registered after the scoring pipeline, whose outputs they read."""

from kedro.pipeline import Pipeline, node

from aerial_kedro.pipelines.sample.nodes import (
    candidate_products,
    draw_sample,
    mapped_chips,
    pick_training_candidates,
    plan_sample,
    sample_products,
    validate_sample_params,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(validate_sample_params, "params:sample", "settings", name="validate_sample_params"),
            node(mapped_chips, ["scoring.predictions", "scoring.run"], "mapped_chips", name="mapped_chips"),
            node(plan_sample, ["mapped_chips", "settings"], "design", name="plan_sample"),
            node(draw_sample, ["mapped_chips", "design"], "drawn_chips", name="draw_sample"),
            node(
                sample_products,
                ["drawn_chips", "design", "scoring.run"],
                ["design_geojson", "design_summary"],
                name="sample_products",
            ),
            node(
                pick_training_candidates,
                [
                    "scoring.predictions",
                    "scoring.run",
                    "drawn_chips",
                    "assessment.training_chips",
                    "settings",
                ],
                "training_candidates",
                name="pick_training_candidates",
            ),
            node(
                candidate_products,
                "training_candidates",
                "candidates_geojson",
                name="candidate_products",
            ),
        ],
        namespace="sample",
        inputs={"scoring.predictions", "scoring.run", "assessment.training_chips"},
        parameters={"params:sample"},
    )
