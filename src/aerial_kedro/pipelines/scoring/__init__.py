"""Scoring: GeoTIFF rasters or tile folders -> resumable predictions -> a land-use map."""

from aerial_kedro.pipelines.scoring.pipeline import create_pipeline

__all__ = ["create_pipeline"]
