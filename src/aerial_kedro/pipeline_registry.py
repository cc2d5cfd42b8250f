"""Project pipelines: ingestion, featurization, modeling, evaluation, and `train` = all four."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from aerial_kedro.pipelines import evaluation, featurization, ingestion, modeling


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = {
        "ingestion": ingestion.create_pipeline(),
        "featurization": featurization.create_pipeline(),
        "modeling": modeling.create_pipeline(),
        "evaluation": evaluation.create_pipeline(),
    }
    pipelines["train"] = sum(pipelines.values(), Pipeline([]))
    pipelines["__default__"] = pipelines["train"]
    return pipelines
