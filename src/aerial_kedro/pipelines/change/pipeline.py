"""`change` = the `score` pipeline twice (namespaces `before` and `after`) + the comparison.

Each date is the unchanged scoring pipeline under a namespace, with ``params:score_source``
mapped to ``params:change.before`` / ``params:change.after``. Everything else that makes a
scoring run's identity stays shared: the trained model and featurizer (the datasets ``train``
wrote) and the ``scoring`` parameters. ``conf/base/catalog_change.yml`` points both namespaces'
predictions at the folder of ``scoring.predictions``, so a date ``score`` already scored with the
same model and settings has the same run id and is reused, not scored again.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline, node, pipeline

from aerial_kedro.models.namespaces import TRAINED_INPUTS
from aerial_kedro.pipelines import scoring
from aerial_kedro.pipelines.change.nodes import (
    assess_change,
    build_change_products,
    compare_dates,
    summarize_transitions,
    validate_change_params,
)

DATES = ("before", "after")


def date_pipeline(date: str) -> Pipeline:
    """The scoring pipeline of one date: datasets ``<date>.scoring.*``."""
    return pipeline(
        scoring.create_pipeline(),
        namespace=date,
        inputs=set(TRAINED_INPUTS),
        parameters={
            "params:score_source": f"params:change.{date}",
            "params:scoring": "params:scoring",
            # Each date refers to the other; the hazier is read matched to the clearer.
            "params:radiometry_reference": f"params:change.radiometry_reference.{date}",
        },
    )


def create_pipeline(**kwargs) -> Pipeline:
    def scored(date: str, name: str) -> str:
        return f"{date}.scoring.{name}"

    comparison = Pipeline(
        [
            node(
                validate_change_params,
                inputs="params:change",
                outputs="change.settings",
                name="validate_change_params",
            ),
            node(
                compare_dates,
                inputs=[
                    *(
                        scored("before", n)
                        for n in ("predictions", "run", "chip_plan", "model_info")
                    ),
                    *(
                        scored("after", n)
                        for n in ("predictions", "run", "chip_plan", "model_info")
                    ),
                    "change.settings",
                ],
                outputs="change.chip_table",
                name="compare_dates",
            ),
            node(
                summarize_transitions,
                inputs=[
                    "change.chip_table",
                    "change.settings",
                    scored("before", "run"),
                    scored("after", "run"),
                    scored("after", "model_info"),
                ],
                outputs="change.transitions",
                name="summarize_transitions",
            ),
            node(
                build_change_products,
                inputs=[
                    "change.chip_table",
                    "change.settings",
                    scored("before", "run"),
                    scored("after", "run"),
                    scored("before", "chip_plan"),
                    scored("after", "chip_plan"),
                    scored("after", "model_info"),
                    scored("after", "settings"),
                ],
                outputs=["change.change_geotiff", "change.changed_chips", "change.change_png"],
                name="build_change_products",
            ),
            node(
                assess_change,
                inputs=[
                    "change.chip_table",
                    "change.settings",
                    scored("before", "chip_plan"),
                    scored("after", "chip_plan"),
                    scored("after", "run"),
                ],
                outputs=["change.detection_metrics", "change.tracked_metrics"],
                name="assess_change",
            ),
        ],
        namespace="change",
        prefix_datasets_with_namespace=False,
    )
    return date_pipeline("before") + date_pipeline("after") + comparison
