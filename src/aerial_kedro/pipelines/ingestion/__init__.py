"""Ingestion: tiles in class folders -> a seeded, stratified tile index."""

from aerial_kedro.pipelines.ingestion.pipeline import create_pipeline

__all__ = ["create_pipeline"]
