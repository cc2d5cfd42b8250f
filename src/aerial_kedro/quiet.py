"""The one place that silences third-party noise a healthy ``kedro run`` would print.

Imported first thing by ``settings.py`` (Kedro imports settings before it loads plugins, hooks,
pipelines or MLflow), so it acts on every ``kedro`` command, ``KedroSession`` and notebook that
bootstraps the project. Each entry names the library that warns and why the warning says nothing
about this project; causes the project had are fixed where they live instead (the
``required_env`` resolver in settings.py, Spark's JVM logging in conf/log4j2.properties via
hooks.py). Log records of third-party loggers are levelled in conf/logging.yml.

Only exact messages are ignored: a new or different warning from the same library still shows.
"""

from __future__ import annotations

import importlib
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

# Modules that warn at import from inside their own ``warnings.catch_warnings`` (MLflow resets
# the filters to "once" while it checks a PythonModel's predict), which filters cannot reach:
# imported here under a recorder instead, and whatever else they warn is warned again.
NOISY_IMPORTS: tuple[str, ...] = ("kedro_mlflow.mlflow",)

# MLflow installs its own stderr handler at import unless told not to; its records then go
# through conf/logging.yml like every other library's (the "mlflow" logger is set there).
_ENVIRONMENT = {"MLFLOW_CONFIGURE_LOGGING": "false"}


def silence_third_party_noise() -> None:
    """Ignore :data:`THIRD_PARTY_WARNINGS` and keep MLflow's logging under conf/logging.yml.

    Idempotent. The filters go to the end of the list, after ``-W``/``PYTHONWARNINGS``
    settings, so ``python -W error`` or ``PYTHONWARNINGS=default`` still show everything.
    """
    for message, category, _why in THIRD_PARTY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, append=True)
    for name, value in _ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    for module in NOISY_IMPORTS:
        import_quietly(module)


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
