"""A `kedro run` prints our progress and nothing from third parties: no Python warning, no
Spark banner or JVM chatter; a JVM warning or error that is not known chatter still shows.
Whole runs are checked where they already run (tests/integration/test_run_log.py: a train-side
and an assess run); here, the filters themselves."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap

import pytest
from conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow

def run_env() -> dict[str, str]:
    """The environment the Makefile sets for `kedro run` (no PYTHONWARNINGS of the caller's)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONWARNINGS"}
    env.update(
        KEDRO_DISABLE_TELEMETRY="true",
        SPARK_LOCAL_IP="127.0.0.1",
        PYSPARK_PYTHON=sys.executable,
    )
    return env


JVM_PROBE = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    from aerial_kedro.hooks import LOG4J2_CONFIG, start_spark, with_log4j2_config

    conf = {"spark.master": "local[1]", "spark.driver.host": "127.0.0.1",
            "spark.driver.bindAddress": "127.0.0.1", "spark.ui.enabled": "false"}
    spark = start_spark(with_log4j2_config(conf, Path(sys.argv[1]) / LOG4J2_CONFIG))
    log = spark.sparkContext._jvm.org.apache.logging.log4j.LogManager.getLogger
    # Chatter a healthy train/score run prints (messages as Spark 3.5 words them).
    log("dev.ludovic.netlib.blas.InstanceBuilder").warn(
        "Failed to load implementation from:dev.ludovic.netlib.blas.JNIBLAS")
    log("org.apache.spark.ml.feature.StringIndexerModel").warn(
        "Input column label does not exist during transformation. Skip StringIndexerModel.")
    log("org.apache.spark.sql.catalyst.util.SparkStringUtils").warn(
        "Truncated the string representation of a plan since it was too large.")
    log("org.apache.spark.scheduler.DAGScheduler").warn(
        "Broadcasting large task binary with size 2.3 MiB")
    log("org.apache.spark.scheduler.TaskSetManager").warn(
        "Stage 195 contains a task of very large size (1052 KiB). The maximum is 1000 KiB.")
    # What must still show.
    log("org.apache.spark.scheduler.TaskSetManager").warn("Lost task 0.0 in stage 3.0: probe")
    log("org.apache.spark.ml.feature.StringIndexerModel").error("probe error")
    log("org.apache.spark.storage.BlockManager").warn("probe warning")
    spark.stop()
    """
)


def test_known_jvm_chatter_is_dropped_and_other_warnings_and_errors_show():
    result = subprocess.run(
        [sys.executable, "-c", JVM_PROBE, str(PROJECT_ROOT)],
        env=run_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jvm_lines = [line for line in result.stderr.splitlines() if re.search(r"WARN|ERROR", line)]
    assert jvm_lines == [line for line in jvm_lines if "probe" in line], (
        f"chatter not dropped: {jvm_lines}"
    )
    assert len(jvm_lines) == 3, result.stderr
    assert "Setting default log level" not in result.stderr
    assert "NativeCodeLoader" not in result.stderr


def test_settings_silence_only_the_known_python_warnings():
    probe = (
        "import warnings\n"
        "import aerial_kedro.settings\n"
        "warnings.warn('register_new_resolver() is deprecated and will be removed')\n"
        "warnings.warn('a warning nobody has seen before')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=run_env(), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if "Warning" in line]
    assert len(warned) == 1 and "a warning nobody has seen before" in warned[0], result.stderr
