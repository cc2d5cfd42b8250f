"""Featurization: a pretrained ImageNet CNN (ONNX) run with onnxruntime inside Spark."""

from aerial_kedro.pipelines.featurization.pipeline import create_pipeline

__all__ = ["create_pipeline"]
