"""Shared fixtures: one local SparkSession per test session, and the real sample data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
SAMPLE_TILES = SHARED_DATA / "eurosat-sample"
RASTERS = SHARED_DATA / "rasters"

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def pytest_configure(config: pytest.Config) -> None:
    if not SAMPLE_TILES.is_dir():
        raise pytest.UsageError(f"Test data missing: {SAMPLE_TILES} (../shared/data beside the project)")


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("aerial_kedro-tests")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .config("spark.driver.memory", "4g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def sample_tiles() -> Path:
    return SAMPLE_TILES


@pytest.fixture(scope="session")
def efficientnet_lite0():
    """(onnx bytes, spec) of the default featurizer, built once."""
    from aerial_kedro.featurizers.efficientnet_lite import build_efficientnet_lite

    return build_efficientnet_lite("efficientnet_lite0")
