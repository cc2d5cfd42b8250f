"""Project pipelines: ingestion, featurization (tiles + reference labels), modeling, evaluation, `train` = all
four, `score`, and the map products built on it (`assess`, `change`, `sample`)."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from aerial_kedro.models.namespaces import SYNAPSEML_MODEL_NAMESPACES
from aerial_kedro.pipelines import (
    assess,
    change,
    evaluation,
    featurization,
    ingestion,
    modeling,
    reference,
    sample,
    scoring,
)


def register_pipelines() -> dict[str, Pipeline]:
    pipelines = {
        "ingestion": ingestion.create_pipeline(),
        "featurization": featurization.create_pipeline() + reference.create_pipeline(),
        "modeling": modeling.create_pipeline(),
        "evaluation": evaluation.create_pipeline(),
    }
    pipelines["train"] = sum(pipelines.values(), Pipeline([]))
    pipelines["score"] = scoring.create_pipeline()
    pipelines["change"] = change.create_pipeline()
    pipelines["assess"] = pipelines["score"] + assess.create_pipeline()
    pipelines["sample"] = pipelines["score"] + sample.create_pipeline()
    # Opt-in SynapseML models (jars from `make jars`): `kedro run --pipelines=train,lightgbm`.
    pipelines["lightgbm"] = modeling.create_pipeline(
        models=SYNAPSEML_MODEL_NAMESPACES
    ) + evaluation.create_pipeline(models=SYNAPSEML_MODEL_NAMESPACES, summarize=False)
    pipelines["__default__"] = pipelines["train"]
    return pipelines
