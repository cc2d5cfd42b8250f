"""The error a user's parameter causes, in a module of its own.

Kept apart from :mod:`aerial_kedro.validation` so the pipelines and the typed settings can raise
it without importing the run-level checks (which import them: that was an import circle).
"""

from __future__ import annotations


class ParameterError(ValueError):
    """A parameter value that cannot work; the message names the key and what is allowed."""
