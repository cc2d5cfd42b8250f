"""Project pipelines: ingestion, featurization, modeling, evaluation, `train` = all four, and `score`."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from aerial_kedro.pipelines import evaluation, featurization, ingestion, modeling, scoring


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = {
        "ingestion": ingestion.create_pipeline(),
        "featurization": featurization.create_pipeline(),
        "modeling": modeling.create_pipeline(),
        "evaluation": evaluation.create_pipeline(),
    }
    pipelines["train"] = sum(pipelines.values(), Pipeline([]))
    pipelines["score"] = scoring.create_pipeline()
    pipelines["__default__"] = pipelines["train"]
    return pipelines
