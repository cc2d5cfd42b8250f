"""Overlapping windows averaged into cells (aerial_kedro.geo.windows)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shapely

from aerial_kedro.geo.grid import ChipGrid
from aerial_kedro.geo.windows import cells_from_windows

CRS = "EPSG:32633"
HALF = ChipGrid(64, 10.0, 32)  # 640 m windows every 320 m: 2 x 2 cells per window


def windows(rows, cols, statuses, probabilities, clouds=None) -> pd.DataFrame:
    frame = pd.DataFrame({"crs": CRS, "row": rows, "col": cols, "status": statuses,
                          "probabilities": probabilities})  # fmt: skip
    if clouds is not None:
        frame["cloud_fraction"] = clouds
    return frame


def cell(cells: pd.DataFrame, row: int, col: int) -> pd.Series:
    return cells.set_index(["row", "col"]).loc[(row, col)]


def test_a_cell_takes_the_mean_probabilities_of_the_windows_covering_it():
    frame = windows([-10, -10], [5, 6], ["scored", "scored"], [[0.9, 0.1], [0.2, 0.8]], [0.1, 0.3])
    cells = cells_from_windows(frame, HALF, ["forest", "built"])
    assert len(cells) == 6  # two windows of 2 x 2 cells sharing a column of two
    shared = cell(cells, -10, 6)
    assert shared["n_windows"] == 2
    assert shared["probabilities"] == pytest.approx([0.55, 0.45])
    assert shared["class_index"] == 0 and shared["predicted_label"] == "forest"
    assert shared["confidence"] == pytest.approx(0.55)
    assert shared["cloud_fraction"] == pytest.approx(0.3)  # the cloudiest window counts
    right = cell(cells, -9, 7)
    assert right["predicted_label"] == "built" and right["n_windows"] == 1
    assert (right["minx"], right["maxx"], right["miny"], right["maxy"]) == (2240, 2560, 2560, 2880)
    assert shared.name == (-10, 6) and cells["chip_id"].str.endswith("_c32").all()


def test_unscored_windows_do_not_vote_and_their_status_is_kept_where_nothing_scored():
    frame = windows([-10, -9, 0], [5, 5, 0], ["scored", "unreadable", "empty"],
                    [[0.9, 0.1], None, None])  # fmt: skip
    cells = cells_from_windows(frame, HALF, ["forest", "built"])
    assert cell(cells, -9, 5)["status"] == "scored"  # seen by the scored window too
    assert cell(cells, -9, 5)["probabilities"] == pytest.approx([0.9, 0.1])
    assert cell(cells, -8, 5)["status"] == "unreadable"
    assert cell(cells, 0, 0)["status"] == "empty" and np.isnan(cell(cells, 0, 0)["confidence"])


def test_cells_mostly_outside_the_imagery_are_dropped():
    frame = windows([-10], [5], ["scored"], [[0.5, 0.5]])
    # Imagery covers the window's west half and a sliver of its east half.
    inside = shapely.box(1600, 2560, 1920 + 100, 3200)
    cells = cells_from_windows(frame, HALF, footprints={CRS: inside}, min_inside=0.5)
    assert sorted(cells["col"].unique()) == [5]


def test_side_by_side_chips_are_already_cells():
    frame = windows([-10], [5], ["scored"], [[0.5, 0.5]])
    assert cells_from_windows(frame, ChipGrid(64, 10.0), ["a", "b"]) is frame


def test_the_stride_must_divide_the_chip():
    with pytest.raises(ValueError, match="must divide"):
        ChipGrid(64, 10.0, 24)
    assert ChipGrid(64, 10.0, 16).windows_per_side == 4
    assert ChipGrid(64, 10.0, 32).bounds_of(-10, 5) == (1600.0, 2560.0, 2240.0, 3200.0)
    assert ChipGrid(64, 10.0).bounds_of(-10, 5) == (3200.0, 5760.0, 3840.0, 6400.0)
