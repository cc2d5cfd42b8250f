"""`assess`: accuracy and area estimates of a scored map against reference labels."""

from aerial_kedro.pipelines.assess.pipeline import create_pipeline

__all__ = ["create_pipeline"]
