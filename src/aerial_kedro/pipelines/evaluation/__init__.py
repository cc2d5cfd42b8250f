"""Evaluation: test-split predictions, metrics, confusion matrices and the run summary."""

from aerial_kedro.pipelines.evaluation.pipeline import create_pipeline

__all__ = ["create_pipeline"]
