"""`sample`: a stratified random sample of a scored map's chips to label for assessment."""

from aerial_kedro.pipelines.sample.pipeline import create_pipeline

__all__ = ["create_pipeline"]
