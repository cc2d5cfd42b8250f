"""Kedro datasets that kedro-datasets lacks: raw bytes (ONNX models), Spark ML models,
resumable chunked Parquet, class rasters as COGs, chip bounds as GeoParquet written by Spark,
JSON / CSV / PNG products written whole or not at all,
and a wrapper for entries that may not exist yet."""

from aerial_kedro.datasets.atomic_datasets import CSVDataset, JSONDataset, MatplotlibDataset
from aerial_kedro.datasets.binary_file_dataset import BinaryFileDataset
from aerial_kedro.datasets.chunked_parquet_dataset import (
    ChunkedParquetDataset,
    ChunkMarkersDataset,
    PredictionChunks,
)
from aerial_kedro.datasets.class_geotiff_dataset import ClassGeoTiffDataset
from aerial_kedro.datasets.geoparquet_dataset import GeoParquetDataset
from aerial_kedro.datasets.optional_dataset import OptionalDataset
from aerial_kedro.datasets.spark_ml_model_dataset import SparkMLModelDataset

__all__ = [
    "BinaryFileDataset",
    "CSVDataset",
    "ChunkMarkersDataset",
    "ChunkedParquetDataset",
    "ClassGeoTiffDataset",
    "GeoParquetDataset",
    "JSONDataset",
    "MatplotlibDataset",
    "OptionalDataset",
    "PredictionChunks",
    "SparkMLModelDataset",
]
