"""Kedro hooks: check parameters, then build the SparkSession from conf/<env>/spark.yml."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.pipeline import Pipeline
from pyspark import SparkConf
from pyspark.sql import SparkSession

from aerial_kedro.validation import validate_run

logger = logging.getLogger(__name__)


class ParameterValidationHooks:
    """Fails a run on a bad parameter before any Spark work, with one line naming the key."""

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any) -> None:
        validate_run(catalog.load("parameters"), pipeline.inputs())


class SparkHooks:
    """Starts (or reuses) the SparkSession configured by the environment's spark.yml."""

    def __init__(self) -> None:
        self._spark_conf: dict[str, Any] = {}

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self._spark_conf = dict(context.config_loader["spark"])

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any) -> None:
        start_spark(self._spark_conf)


def start_spark(spark_conf: dict[str, Any]) -> SparkSession:
    """Build the SparkSession from a spark.yml mapping (reuses a running session)."""
    # Python workers must run the interpreter that has this project's packages, not `python3`
    # on PATH; a cluster env overrides this with spark.pyspark.python in its spark.yml.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    conf = SparkConf().setAll((key, _conf_value(value)) for key, value in spark_conf.items())
    spark = SparkSession.builder.config(conf=conf).getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    logger.info("Spark %s on %s", spark.version, spark.sparkContext.master)
    return spark


def _conf_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
