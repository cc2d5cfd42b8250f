"""`change`: land-use change between two dates scored on one chip grid."""

from aerial_kedro.pipelines.change.pipeline import create_pipeline

__all__ = ["create_pipeline"]
