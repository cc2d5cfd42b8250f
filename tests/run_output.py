"""What a user reads in a `kedro run`'s output: the lines that would read as a third party's noise."""

from __future__ import annotations

import re

# A warning line: Python's "UserWarning: ...", logging's "WARNING", log4j's "WARN".
WARNING_LINE = re.compile(r"Warning\b|\bWARN(ING)?\b")
OURS = re.compile(r"\baerial_kedro[.\w]*:")


def third_party_noise(output: str) -> list[str]:
    """Lines a user would read as a third party's warning or chatter."""
    return [
        line
        for line in output.splitlines()
        if (WARNING_LINE.search(line) and not OURS.search(line))
        or "Setting default log level" in line
        or line.startswith("  ")  # the source line Python prints under a warning
    ]
