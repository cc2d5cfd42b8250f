"""Kedro hooks: check parameters, then build the SparkSession from conf/<env>/spark.yml."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.pipeline import Pipeline
from pyspark import SparkConf
from pyspark.sql import SparkSession

from aerial_kedro.validation import validate_run

logger = logging.getLogger(__name__)

# Spark's JVM logging, shipped with the project (conf/log4j2.properties beside logging.yml).
LOG4J2_CONFIG = Path("conf") / "log4j2.properties"
_DRIVER_JAVA_OPTIONS = "spark.driver.extraJavaOptions"


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
        log4j2 = Path(context.project_path) / LOG4J2_CONFIG
        self._spark_conf = with_log4j2_config(dict(context.config_loader["spark"]), log4j2)
        if interactive():  # kedro ipython / jupyter / %reload_kedro: no pipeline run will start it
            start_spark(self._spark_conf)

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog: Any) -> None:
        start_spark(self._spark_conf)


def interactive() -> bool:
    """Inside IPython or a Jupyter kernel, where Kedro creates a context but runs no pipeline."""
    ipython = sys.modules.get("IPython")
    return ipython is not None and ipython.get_ipython() is not None


def with_log4j2_config(spark_conf: dict[str, Any], log4j2: Path) -> dict[str, Any]:
    """``spark_conf`` whose driver JVM reads ``log4j2`` (when that file exists).

    Without a log4j2 file of its own, Spark falls back to its built-in defaults, which print
    "Setting default log level" banners and every library's set-up warning on a healthy run.
    The option is appended to any ``spark.driver.extraJavaOptions`` spark.yml sets, and an
    environment that names its own ``log4j2.configurationFile`` there keeps it. Only a driver the
    SparkSession launches reads it (local and YARN client mode); executors keep their cluster's.
    """
    options = str(spark_conf.get(_DRIVER_JAVA_OPTIONS, "") or "")
    if not log4j2.is_file() or "log4j2.configurationFile" in options:
        return spark_conf
    option = f"-Dlog4j2.configurationFile={log4j2.resolve().as_uri()}"
    return {**spark_conf, _DRIVER_JAVA_OPTIONS: f"{options} {option}".strip()}


def start_spark(spark_conf: dict[str, Any]) -> SparkSession:
    """Build the SparkSession from a spark.yml mapping (reuses a running session).

    JVM log levels come from the log4j2 file :func:`with_log4j2_config` names, not from
    ``setLogLevel`` here: that would reset the root level a cluster's own file chose.
    """
    # Python workers must run the interpreter that has this project's packages, not `python3`
    # on PATH; a cluster env overrides this with spark.pyspark.python in its spark.yml.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    conf = SparkConf().setAll([(key, _conf_value(value)) for key, value in spark_conf.items()])
    spark = SparkSession.builder.config(conf=conf).getOrCreate()
    logger.info("Spark %s on %s", spark.version, spark.sparkContext.master)
    return spark


def _conf_value(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
