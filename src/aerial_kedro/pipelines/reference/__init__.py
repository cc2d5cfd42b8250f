"""Reference labels drawn over rasters as a training source."""

from aerial_kedro.pipelines.reference.pipeline import create_pipeline

__all__ = ["create_pipeline"]
