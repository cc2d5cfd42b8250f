"""The project's ``kedro run``: a mistake the user made ends in one line, anything else keeps its traceback.

Kedro runs a project's own ``<package>/cli.py`` ``run`` instead of its default one (``kedro run``,
``python -m aerial_kedro`` through ``find_run_command``). This one *is* Kedro's run: the same
click parameters (the very objects, so every option, default and ``--config`` file behaves the
same) and Kedro's own callback, plus ``--verbose``/``-v``. What it adds is how a failure ends:

* a **user error** prints ``Error: <message>`` as one line on stderr and exits with status 2
  (click's status for a wrongly called command), without a traceback, and without Kedro's own
  report of the failure (``Node ... failed with error``, the ``--from-nodes`` resume hint);
* anything else is re-raised untouched: its traceback and Kedro's report show as before (exit 1).

``--verbose``, ``AERIAL_KEDRO_TRACEBACK=1`` (or Kedro's own verbose flag, when a command set it)
shows the traceback and Kedro's report of a user error too, still ending with the ``Error:`` line.

What counts as a user error (:func:`user_error`):

* ``ParameterError``, ``ConfigCheckError`` and ``BlobError`` (the project's: the message names
  the key, the variables, or the container and the datasets that need it); ``FileNotFoundError``
  from anywhere (it names the path); Kedro's ``MissingConfigException``/``BadConfigException``
  (an ``--env`` or ``conf/`` that does not exist or does not load: they name the path or keys);
* a ``ValueError`` (or subclass) raised by the project's own code or by Kedro: our nodes and
  settings name the culprit ("the two dates were scored on different chip grids"), Kedro names
  the pipeline or node a command line asked for. A ``ValueError`` raised inside a third-party
  library (numpy, pyspark, json, scikit-learn ...) is taken for a bug: it keeps its traceback;
* a ``TimeoutError`` raised by the project's run locks: another run of the same input (score) or
  project (train) held the lock past its timeout; the line names the run and the lock;
* a ``DatasetError`` raised by one of the project's datasets ("No Spark ML model at ...: run
  `kedro run --pipelines=train` first");
* an OmegaConf error of a config the user wrote: a missing environment variable (then every
  variable the environment's config needs and lacks is named at once, as
  ``python -m aerial_kedro.blob check-config`` does), an interpolation key or resolver that does
  not exist, a mandatory ``???`` value left unset, a resolver refusing a value with a
  ``ValueError``/``FileNotFoundError``.

Kedro does not wrap a node's or a hook's exception (the node logs it and re-raises it as is), so
the exception that reaches this command is the one raised; only Kedro's ``DatasetError``, which
wraps what a dataset raised while loading, is unwrapped (``__cause__``) to judge its cause; the
line printed is still the outer message, which names the dataset. An exception raised while
handling another (``__context__``) is a new failure and is judged by itself. Everything else (a
``Py4JJavaError``, ``KeyError``, ``TypeError``, ``AssertionError`` ...) is unexpected.
Kedro's report of a failure is hidden by a logging filter on the loggers that write it
(``kedro.pipeline.node``, ``kedro.runner.*``), active only while this command runs and only for
records logged while a user error is being handled; a ``ParallelRunner``'s worker processes log
their node's failure themselves, unfiltered.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import kedro
from kedro.config import BadConfigException, MissingConfigException
from kedro.framework.cli.project import run as kedro_run
from kedro.framework.cli.utils import KedroCliError
from kedro.io import DatasetError
from omegaconf.errors import (
    GrammarParseError,
    InterpolationKeyError,
    InterpolationResolutionError,
    InterpolationToMissingValueError,
    MissingMandatoryValue,
    OmegaConfBaseException,
    UnsupportedInterpolationType,
)

import aerial_kedro
from aerial_kedro.blob.client import BlobError
from aerial_kedro.blob.config_check import ConfigCheckError, check_missing_variables
from aerial_kedro.errors import ParameterError

TRACEBACK_ENV = "AERIAL_KEDRO_TRACEBACK"
EXIT_USER_ERROR = 2

_USER_ERRORS = (
    ParameterError,
    ConfigCheckError,
    BlobError,
    FileNotFoundError,
    MissingConfigException,
    BadConfigException,
)
_CONFIG_MISTAKES = (
    InterpolationKeyError,
    UnsupportedInterpolationType,
    InterpolationToMissingValueError,
    MissingMandatoryValue,
    GrammarParseError,
)
# oc.env: "Environment variable 'X' not found"; required_env (aerial_kedro.tracking.resolvers): "... X is not set".
_MISSING_VARIABLE = re.compile(r"Environment variable '?[A-Za-z_]\w*'? (?:not found|is not set)")
_RESOLVER_REFUSED = re.compile(r"^(?:ValueError|FileNotFoundError) raised while resolving interpolation")
_PROJECT = Path(aerial_kedro.__file__).parent
_KEDRO = Path(kedro.__file__).parent
# The loggers Kedro reports a failed run on: the node ("Node ... failed with error") and the
# runner ("No nodes ran ..." / "... resume ... --from-nodes").
_KEDRO_FAILURE_LOGGERS = (
    "kedro.pipeline.node",
    "kedro.runner.runner",
    "kedro.runner.sequential_runner",
    "kedro.runner.thread_runner",
    "kedro.runner.parallel_runner",
)


class UserError(click.ClickException):
    """A user's mistake: click prints ``Error: <message>`` on stderr and exits with status 2."""

    exit_code = EXIT_USER_ERROR


def user_error(error: BaseException) -> BaseException | None:
    """The exception that makes ``error`` a user's mistake (see the module), or None if unexpected."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if _is_user_error(current):
            return current
        if not isinstance(current, DatasetError):
            return None
        current = current.__cause__  # Kedro's wrapper around what a dataset raised
    return None


def _is_user_error(error: BaseException) -> bool:
    if isinstance(error, OmegaConfBaseException):  # before ValueError: many of them are ValueErrors
        return (
            isinstance(error, _CONFIG_MISTAKES)
            or missing_variable(error)
            or (isinstance(error, InterpolationResolutionError) and bool(_RESOLVER_REFUSED.match(str(error))))
        )
    if isinstance(error, _USER_ERRORS):
        return True
    if isinstance(error, DatasetError):  # our datasets' own refusals ("No Spark ML model at ...")
        return _raised_in(error, _PROJECT)
    # A run lock another run holds past the timeout (score's predictions, train's outputs).
    if isinstance(error, TimeoutError) and _raised_in(error, _PROJECT):
        return True
    return isinstance(error, ValueError) and _raised_in(error, _PROJECT, _KEDRO)


def missing_variable(error: BaseException) -> bool:
    """Whether ``error`` is a config interpolation that failed on an unset environment variable."""
    return isinstance(error, InterpolationResolutionError) and bool(_MISSING_VARIABLE.search(str(error)))


def _raised_in(error: BaseException, *packages: Path) -> bool:
    """Whether the innermost frame of ``error``'s traceback (where it was raised) is in ``packages``."""
    tb = error.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    raised_in = Path(tb.tb_frame.f_code.co_filename)
    return any(raised_in.is_relative_to(package) for package in packages)


def one_line(error: BaseException) -> str:
    """``error``'s message on one line (OmegaConf's ``object_type=`` detail dropped)."""
    lines = [line.strip() for line in str(error).splitlines()]
    kept = [line for line in lines if line and not line.startswith("object_type=")]
    joined = "; ".join(kept) if isinstance(error, OmegaConfBaseException) else " ".join(kept)
    return joined or type(error).__name__


def missing_variables_message(env: str | None, conf_source: str | None) -> str | None:
    """Every environment variable the run's environment needs and lacks, in one line (or None)."""
    from kedro.framework.project import settings
    from kedro.utils import find_kedro_project

    loader_args = settings.CONFIG_LOADER_ARGS
    env = env or os.environ.get("KEDRO_ENV") or loader_args.get("default_run_env") or "local"
    project = find_kedro_project(Path.cwd()) or Path.cwd()
    conf_root = Path(conf_source) if conf_source else project / settings.CONF_SOURCE
    if not conf_root.is_dir():  # a packaged (tar/zip) config: the interpolation's own message
        return None
    try:
        check_missing_variables(conf_root, env)
    except ConfigCheckError as error:
        return str(error)
    return None


class _HideUserErrorReports(logging.Filter):
    """Drops a record logged while a user error is being handled (Kedro's report of the failure)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = sys.exc_info()[1]
        return error is None or user_error(error) is None


@contextmanager
def _kedro_failure_reports_hidden(hide: bool) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in _KEDRO_FAILURE_LOGGERS] if hide else []
    hidden = _HideUserErrorReports()
    for logger in loggers:
        logger.addFilter(hidden)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(hidden)


def show_traceback(verbose: bool = False) -> bool:
    """``--verbose``, Kedro's own verbose flag, or ``AERIAL_KEDRO_TRACEBACK`` set to a true value."""
    wanted = os.environ.get(TRACEBACK_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")
    return verbose or KedroCliError.VERBOSE_ERROR or wanted


def _run(verbose: bool, **options: Any) -> Any:
    kedro_run_callback = kedro_run.callback
    if kedro_run_callback is None:  # click types it Optional; Kedro's `run` always has one
        raise RuntimeError("Kedro's run command has no callback")
    tracebacks = show_traceback(verbose)
    with _kedro_failure_reports_hidden(hide=not tracebacks):
        try:
            return kedro_run_callback(**options)
        except Exception as error:
            culprit = user_error(error)
            if culprit is None:
                raise
            message = None
            if missing_variable(culprit):
                message = missing_variables_message(options.get("env"), options.get("conf_source"))
            if tracebacks:
                traceback.print_exception(error, file=sys.stderr)
            raise UserError(message or one_line(error)) from None


_VERBOSE = click.Option(
    ["--verbose", "-v"],
    is_flag=True,
    help=f"On a user error, show the traceback too (or set {TRACEBACK_ENV}=1).",
)


@click.group(name="aerial_kedro")
def cli() -> None:
    """Commands of the aerial_kedro project."""


run = type(kedro_run)(
    name="run",
    callback=_run,
    params=[*kedro_run.params, _VERBOSE],
    help=kedro_run.help,
    short_help=kedro_run.short_help,
)
cli.add_command(run)
