"""Config resolvers of the tracking config: ``${project_path:}`` and ``${required_env:NAME}``.

``conf/*/mlflow.yml`` reads the project's root (a local ``mlflow.db``) and, on HDInsight, the
tracking URI from the environment. ``required_env`` is registered once in ``settings.py``;
``${project_path:}`` per session by ``RunTrackingHooks`` (and by the config check).
"""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import OmegaConf


def register_project_path_resolver(project_path: Path | str) -> None:
    """``${project_path:}`` in conf files = this project's root (absolute, POSIX separators)."""
    root = Path(project_path).resolve().as_posix()
    # OmegaConf 2.4 renamed register_new_resolver (deprecated) to register_resolver.
    register = getattr(OmegaConf, "register_resolver", OmegaConf.register_new_resolver)
    register("project_path", lambda: root, replace=True)


def required_env(name: str) -> str:
    """Config resolver ``${required_env:NAME}``: the variable's value, or one line naming it."""
    value = os.environ.get(name)
    if not value:
        raise ValueError(f"Environment variable {name} is not set (required by this environment's config)")
    return value
