"""What a scored chip keeps for `change` and `sample`: colour cells and texture."""

from __future__ import annotations

import numpy as np

from aerial_kedro.chips.descriptors import (
    colour_cells,
    decode_colour_cells,
    decode_texture,
    texture_features,
    texture_slice,
)


def test_colour_cells_are_16_by_16_block_means_and_cloud_shares_in_1024_bytes():
    chip = np.zeros((64, 64, 3), dtype=np.uint8)
    chip[:4, :4] = (200, 100, 50)  # exactly the first cell
    chip[4:8, :4, 0] = 3  # the first cell of the second row, red only
    clouds = np.zeros((64, 64), dtype=bool)
    clouds[:4, 4:8] = True  # the second cell all cloud
    clouds[:1, 8:12] = True  # a quarter of the third: not a cloudy cell
    blob = colour_cells(chip, clouds)
    assert len(blob) == 16 * 16 * 4
    cells, cloudy = decode_colour_cells([blob])
    assert cells.shape == (1, 256, 3) and cloudy.shape == (1, 256)
    assert cells[0, 0].tolist() == [200, 100, 50]
    assert cells[0, 16].tolist() == [3, 0, 0] and cells[0, 1].tolist() == [0, 0, 0]
    assert np.flatnonzero(cloudy[0]).tolist() == [1]


def test_colour_cells_of_a_size_that_does_not_divide_are_area_averages():
    chip = np.full((50, 50, 3), 77, dtype=np.uint8)
    assert decode_colour_cells([colour_cells(chip)])[0].min() == 77


def test_texture_keeps_the_stage_statistics_after_the_efficientnet_head_as_float16():
    vector = np.arange(1968, dtype=np.float32) / 100
    part = texture_slice("efficientnet_lite0", {"pooled_stages": [4, 5, 6], "std_stages": [5, 6]})
    decoded = decode_texture([texture_features(vector, part)])[0]
    assert decoded.shape == (688,)
    np.testing.assert_allclose(decoded, vector[1280:], rtol=1e-3)
    assert texture_slice("squeezenet1_1", {}) == slice(None)
    assert texture_slice("efficientnet_lite0", {}) == slice(None)  # head only: the whole vector
