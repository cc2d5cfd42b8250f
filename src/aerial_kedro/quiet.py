"""The one place that silences third-party noise a healthy ``kedro run`` would print.

Imported first thing by ``settings.py`` (Kedro imports settings before it loads plugins, hooks,
pipelines or MLflow), so it acts on every ``kedro`` command, ``KedroSession`` and notebook that
bootstraps the project. Each entry names the library that warns and why the warning says nothing
about this project; causes the project had are fixed where they live instead (the
``required_env`` resolver in settings.py, Spark's JVM logging in conf/log4j2.properties via
hooks.py, kedro-mlflow's "tracking URI is converted" line by an absolute artifact location in
conf/base/mlflow.yml). Log records of third-party loggers are levelled in conf/logging.yml; the
few INFO records a reader skips every time (one "Loading data from params:..." line per parameter
of every node) are dropped by :class:`KnownLogNoise`, attached here to the loggers that emit them,
so it holds whatever logging configuration a run uses.

Only exact messages are ignored: a new or different warning from the same library still shows.
"""

from __future__ import annotations

import importlib
import logging
import os
import re
import warnings

# (regular expression matched against the start of the message, category, why it is noise)
THIRD_PARTY_WARNINGS: tuple[tuple[str, type[Warning], str], ...] = (
    (
        r"register_new_resolver\(\) is deprecated",
        UserWarning,
        "Kedro's OmegaConfigLoader (globals, runtime_params, custom resolvers) and kedro-mlflow "
        "(km.random_name) still call OmegaConf's old name, several times per session",
    ),
    (
        r".*Add type hints to the `predict` method",
        UserWarning,
        "MLflow, at import of kedro-mlflow's KedroPipelineModel (a PythonModel this project "
        "never logs); the message starts with a terminal colour code, hence the leading .*",
    ),
    (
        r"One or more dataset names contain '\.' characters",
        UserWarning,
        "Kedro, for a node in one namespace that reads another namespace's outputs (the "
        "evaluation summary reads every <classifier>.metrics): the dots are Kedro namespaces",
    ),
)

# (logger, regular expression matched against the start of the formatted message, why it is noise)
KNOWN_LOG_NOISE: tuple[tuple[str, str, str], ...] = (
    (
        "kedro.io.data_catalog",
        r"Loading data from (params:\S+|parameters) \(",
        "Kedro, once per parameter a node reads (a run of train prints dozens): parameters are "
        "configuration, not data; datasets' loads and saves still show",
    ),
    (
        "kedro.runner.sequential_runner",
        r"Using synchronous mode for loading and saving data",
        "Kedro, at every run: the same advice to try --async (still available), not news about this run",
    ),
    (
        "kedro_mlflow.framework.hooks.mlflow_hook",
        r"Registering new custom resolver: 'km\.random_name'",
        "kedro-mlflow, at every session start: a config resolver this project does not use",
    ),
    (
        "kedro.validation.parameter_validator",
        r"No typed parameter requirements found",
        "Kedro, at every session start: this project checks its parameters itself (validation.py)",
    ),
)


class KnownLogNoise(logging.Filter):
    """Drops the records of :data:`KNOWN_LOG_NOISE` logged to one logger; passes all others."""

    def __init__(self, patterns: tuple[str, ...]) -> None:
        super().__init__()
        self.patterns = tuple(re.compile(pattern) for pattern in patterns)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.INFO:
            return True
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is not ours to judge
            return True
        return not any(pattern.match(message) for pattern in self.patterns)


def filter_known_log_noise() -> None:
    """Attach :class:`KnownLogNoise` to each logger of :data:`KNOWN_LOG_NOISE` (idempotent).

    On the logger rather than on a handler: ``logging.config.dictConfig`` (Kedro applies
    conf/logging.yml after this module ran) replaces handlers but keeps loggers' filters.
    """
    patterns: dict[str, list[str]] = {}
    for name, pattern, _why in KNOWN_LOG_NOISE:
        patterns.setdefault(name, []).append(pattern)
    for name, names_patterns in patterns.items():
        target = logging.getLogger(name)
        for old in [f for f in target.filters if isinstance(f, KnownLogNoise)]:
            target.removeFilter(old)
        target.addFilter(KnownLogNoise(tuple(names_patterns)))


# Modules that warn at import from inside their own ``warnings.catch_warnings`` (MLflow resets
# the filters to "once" while it checks a PythonModel's predict), which filters cannot reach:
# imported here under a recorder instead, and whatever else they warn is warned again.
NOISY_IMPORTS: tuple[str, ...] = ("kedro_mlflow.mlflow",)

# MLflow installs its own stderr handler at import unless told not to; its records then go
# through conf/logging.yml like every other library's (the "mlflow" logger is set there).
_ENVIRONMENT = {"MLFLOW_CONFIGURE_LOGGING": "false"}


def silence_third_party_noise() -> None:
    """Ignore :data:`THIRD_PARTY_WARNINGS`, drop :data:`KNOWN_LOG_NOISE` and keep MLflow's logging
    under conf/logging.yml.

    Idempotent. The filters go to the end of the list, after ``-W``/``PYTHONWARNINGS``
    settings, so ``python -W error`` or ``PYTHONWARNINGS=default`` still show everything.
    """
    for message, category, _why in THIRD_PARTY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, append=True)
    for name, value in _ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    for module in NOISY_IMPORTS:
        import_quietly(module)
    filter_known_log_noise()


def is_known_noise(warning: Warning | str, category: type[Warning]) -> bool:
    """Whether a warning is one of :data:`THIRD_PARTY_WARNINGS`."""
    text = str(warning)
    return any(
        issubclass(category, known) and re.match(message, text, re.IGNORECASE)
        for message, known, _why in THIRD_PARTY_WARNINGS
    )


def import_quietly(module: str) -> None:
    """Import ``module`` (if installed) dropping only its :data:`THIRD_PARTY_WARNINGS`."""
    with warnings.catch_warnings(record=True) as caught:
        try:
            importlib.import_module(module)
        except ImportError:
            return
    for record in caught:
        if not is_known_noise(record.message, record.category):
            warnings.warn_explicit(
                record.message,
                record.category,
                record.filename,
                record.lineno,
                source=record.source,
            )


silence_third_party_noise()
