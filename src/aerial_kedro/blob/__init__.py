"""Azure Blob storage for the project: staging data (CLI), URL parsing, fail-fast clients.

Spark reaches blobs through hadoop-azure (see ``aerial_kedro.datasets.blob_spark_dataset``);
everything else (the CLI, JSON/PNG/ONNX datasets via adlfs) through azure-storage-blob.
"""

from aerial_kedro.blob.client import BlobError, service_client
from aerial_kedro.blob.urls import BlobUrl, BlobUrlError

__all__ = ["BlobError", "BlobUrl", "BlobUrlError", "service_client"]
