"""The Czech scene's chips, shared by the geo tests that plan and read them."""

from __future__ import annotations

import pytest
from conftest import CZECH_SCENE

from aerial_kedro.geo.chip_planning import Chip, plan_chips_from_paths


@pytest.fixture(scope="module")
def scene_chips() -> list[Chip]:
    chips, problems = plan_chips_from_paths([str(CZECH_SCENE)])
    assert problems == []
    return chips
