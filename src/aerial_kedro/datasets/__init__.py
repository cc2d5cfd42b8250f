"""Kedro datasets that kedro-datasets lacks: raw bytes (ONNX models) and Spark ML models."""

from aerial_kedro.datasets.binary_file_dataset import BinaryFileDataset
from aerial_kedro.datasets.spark_ml_model_dataset import SparkMLModelDataset

__all__ = ["BinaryFileDataset", "SparkMLModelDataset"]
