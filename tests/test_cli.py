"""The project's `kedro run` (src/aerial_kedro/cli.py): a user's mistake ends in one `Error:` line
on stderr with exit status 2 and no traceback; anything else keeps its traceback.

The CLI tests run the real command in a subprocess on a throw-away project copy. All but two fail
before Spark starts (a few seconds each); the two `score` runs start Spark to fail on the model.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import CZECH_SCENE, make_project_copy
from kedro.io import DatasetError
from kedro.pipeline import node
from omegaconf import OmegaConf

from aerial_kedro import cli
from aerial_kedro.errors import ParameterError

pytestmark = pytest.mark.slow  # kedro subprocesses, Spark jobs or servers

HDINSIGHT_VARIABLES = ("AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_KEY", "MLFLOW_TRACKING_URI")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return make_project_copy(tmp_path_factory.mktemp("cli") / "project")


def kedro(project: Path, *args: str, module: str = "kedro", **env: str) -> subprocess.CompletedProcess:
    """``python -m kedro run <args>`` (or ``python -m aerial_kedro <args>``) in ``project``."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in (*HDINSIGHT_VARIABLES, cli.TRACEBACK_ENV, "KEDRO_ENV", "PYTHONWARNINGS")
    }
    environment.update(
        KEDRO_DISABLE_TELEMETRY="true", SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable, **env
    )
    command = [sys.executable, "-m", module, *(["run"] if module == "kedro" else []), *args]
    return subprocess.run(
        command, cwd=project, env=environment, capture_output=True, text=True, timeout=600
    )


def assert_one_error_line(result: subprocess.CompletedProcess) -> str:
    """The run ended on a user error: exit 2, stderr one `Error:` line, no traceback anywhere."""
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    assert "Traceback" not in output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


# ------------------------------------------------------------------ the real CLI


def test_a_bad_parameter_is_one_line_naming_the_key(project):
    line = assert_one_error_line(kedro(project, "--pipelines=train", "--params=featurizer=resnet"))
    assert line.startswith("Error: featurizer: 'resnet' is not allowed; allowed values: ")


def test_a_missing_tiles_folder_is_one_line_naming_it(project, tmp_path):
    missing = tmp_path / "no-such-tiles"
    line = assert_one_error_line(kedro(project, "--pipelines=train", f"--params=tiles_dir={missing}"))
    assert f"tiles_dir: '{missing}' is not a folder" in line


def test_hdinsight_without_its_variables_names_all_of_them_in_one_line(project):
    line = assert_one_error_line(kedro(project, "--pipelines=train", "--env=hdinsight"))
    assert line.startswith("Error: Environment 'hdinsight' needs environment variable(s) that are not set: ")
    assert all(name in line for name in HDINSIGHT_VARIABLES), line


def test_hdinsight_names_only_the_variables_still_missing(project):
    result = kedro(project, "--pipelines=train", "--env=hdinsight", AZURE_STORAGE_ACCOUNT="someaccount")
    line = assert_one_error_line(result)
    assert "AZURE_STORAGE_KEY, MLFLOW_TRACKING_URI" in line and "AZURE_STORAGE_ACCOUNT" not in line


def test_an_unknown_pipeline_or_environment_is_one_line(project):
    line = assert_one_error_line(kedro(project, "--pipelines=trian"))
    assert "Failed to find the pipeline named 'trian'" in line and "Did you mean" in line
    line = assert_one_error_line(kedro(project, "--env=nosuch"))
    assert line.endswith(str(project / "conf" / "nosuch"))


def test_an_unreachable_blob_container_is_one_line_naming_it(project):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    line = assert_one_error_line(kedro(project, "--pipelines=train", "--env=azurite", AZURITE_BLOB_PORT=str(port)))
    assert line.startswith(f"Error: Azure Blob endpoint http://127.0.0.1:{port}/devstoreaccount1/")
    assert "is not reachable" in line and "needed by " in line


@pytest.mark.parametrize(("how", "env"), [("--verbose", {}), (None, {cli.TRACEBACK_ENV: "1"})])
def test_verbose_or_the_variable_shows_the_traceback_of_a_user_error(project, how, env):
    args = ["--pipelines=train", "--params=featurizer=resnet", *([how] if how else [])]
    result = kedro(project, *args, **env)
    assert result.returncode == 2
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert "aerial_kedro.errors.ParameterError: featurizer: 'resnet'" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("Error: featurizer: 'resnet' is not allowed")


def test_python_m_aerial_kedro_runs_the_same_command(project):
    line = assert_one_error_line(
        kedro(project, "--pipelines=train", "--params=featurizer=resnet", module="aerial_kedro")
    )
    assert line.startswith("Error: featurizer: 'resnet' is not allowed")


def test_a_run_failing_on_a_user_error_hides_kedros_failure_report(project):
    # No model trained in this copy: the dataset refuses it, after Spark started and a node ran.
    result = kedro(project, "--pipelines=score", f"--params=score_source={CZECH_SCENE}")
    line = assert_one_error_line(result)
    assert line.startswith("Error: scoring_model: No Spark ML model at ")
    assert "kedro run --pipelines=train` first" in line
    assert "Running node: validate_scoring_params" in result.stdout  # the run did start
    assert "--from-nodes" not in result.stdout and "nodes that have not run" not in result.stdout


def test_an_unexpected_failure_keeps_its_traceback_and_kedros_report(tmp_path):
    # A corrupt model: Spark ML's metadata reader raises JSONDecodeError, a library's failure.
    project = make_project_copy(tmp_path / "project")
    metadata = project / "data/06_models/efficientnet_lite0/logistic_regression/metadata"
    metadata.mkdir(parents=True)
    (metadata / "part-00000").write_text("not json {")
    result = kedro(project, "--pipelines=score", f"--params=score_source={CZECH_SCENE}")
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback (most recent call last):" in result.stderr
    assert "json.decoder.JSONDecodeError" in result.stderr
    assert not any(line.startswith("Error: ") for line in result.stderr.splitlines())
    assert "--from-nodes" in result.stdout  # Kedro's resume hint is kept


# ------------------------------------------------------------------ the rule, in process


def _raised(make) -> BaseException:
    try:
        make()
    except BaseException as error:  # noqa: BLE001 - the tests inspect what was raised
        return error
    raise AssertionError("nothing raised")


def _parameter_error():
    raise ParameterError("featurizer: 'resnet' is not allowed")


def _type_error_while_handling_a_user_error():
    try:
        _parameter_error()
    except ParameterError:
        raise TypeError("a bug in an except block") from None


def _wrapped(cause: BaseException):
    def load():
        try:
            raise cause
        except Exception as exc:
            raise DatasetError("Failed while loading data from dataset X") from exc

    return load


def _missing_variable():
    config = OmegaConf.create({"key": "${oc.env:AERIAL_KEDRO_NO_SUCH_VARIABLE}"})
    OmegaConf.to_container(config, resolve=True)


def _missing_interpolation_key():
    OmegaConf.to_container(OmegaConf.create({"key": "${no_such_key}"}), resolve=True)


@pytest.mark.parametrize(
    ("make", "is_user_error"),
    [
        (_parameter_error, True),
        (lambda: open("/no/such/file"), True),  # FileNotFoundError names the path
        (_wrapped(FileNotFoundError("[Errno 2] No such file: '/x'")), True),
        (_wrapped(RuntimeError("Py4JJavaError-like failure")), False),
        (_missing_variable, True),
        (_missing_interpolation_key, True),
        (lambda: np.ones(2) + np.ones(3), False),  # ValueError raised inside a library
        (lambda: {}["key"], False),
        (lambda: None + 1, False),
        (_type_error_while_handling_a_user_error, False),
    ],
    ids=[
        "parameter", "file-not-found", "dataset-wraps-missing-file", "dataset-wraps-other",
        "missing-env-variable", "missing-interpolation-key", "numpy-value-error", "key-error",
        "type-error", "new-error-while-handling-one",
    ],
)
def test_user_errors_and_unexpected_ones(make, is_user_error):
    assert (cli.user_error(_raised(make)) is not None) is is_user_error


def test_a_value_error_raised_by_project_code_is_a_user_error():
    from aerial_kedro.featurizers.registry import build_featurizer

    error = _raised(lambda: build_featurizer("resnet"))
    assert type(error) is ValueError and cli.user_error(error) is error


def test_kedros_report_of_a_node_failing_on_a_user_error_is_hidden(caplog):
    def check(value):
        raise ParameterError(f"threshold: {value} is outside [0, 1]")

    def crash(value):
        raise KeyError(value)

    caplog.set_level(logging.INFO, logger="kedro")
    with cli._kedro_failure_reports_hidden(hide=True):
        with pytest.raises(ParameterError):
            node(check, "params:threshold", None, name="check").run({"params:threshold": 2})
        with pytest.raises(KeyError):
            node(crash, "params:threshold", None, name="crash").run({"params:threshold": 2})
    failures = [record.getMessage() for record in caplog.records if "failed with error" in record.getMessage()]
    assert len(failures) == 1 and "crash" in failures[0]
    assert "Running node: check" in caplog.text  # only the failure report is dropped
    assert not logging.getLogger("kedro.pipeline.node").filters  # removed afterwards


def test_one_line_flattens_a_multi_line_message():
    assert cli.one_line(ValueError("first\n  second\n")) == "first second"
    error = _raised(_missing_interpolation_key)
    assert "\n" not in cli.one_line(error) and "object_type" not in cli.one_line(error)
