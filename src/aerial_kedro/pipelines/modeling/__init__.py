"""Modeling: one namespaced Spark ML classifier pipeline per model."""

from aerial_kedro.pipelines.modeling.pipeline import create_pipeline

__all__ = ["create_pipeline"]
