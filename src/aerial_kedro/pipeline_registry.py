"""Project pipelines: ingestion, featurization, modeling, evaluation, `train` = all four, and `score`."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from aerial_kedro.pipelines import evaluation, featurization, ingestion, modeling, scoring
from aerial_kedro.pipelines.modeling.pipeline import SYNAPSEML_MODEL_NAMESPACES


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = {
        "ingestion": ingestion.create_pipeline(),
        "featurization": featurization.create_pipeline(),
        "modeling": modeling.create_pipeline(),
        "evaluation": evaluation.create_pipeline(),
    }
    pipelines["train"] = sum(pipelines.values(), Pipeline([]))
    pipelines["score"] = scoring.create_pipeline()
    # Opt-in SynapseML models (jars from `make jars`): `kedro run --pipelines=train,lightgbm`.
    pipelines["lightgbm"] = modeling.create_pipeline(
        models=SYNAPSEML_MODEL_NAMESPACES
    ) + evaluation.create_pipeline(models=SYNAPSEML_MODEL_NAMESPACES, summarize=False)
    pipelines["__default__"] = pipelines["train"]
    return pipelines
