"""Appearance change: descriptors round-trip, a scene-wide shift is not change, a local one is,
a change every alike cell makes (the season) is not change either, and the score is a robust z
whose threshold means the same on every scene."""

from __future__ import annotations

import numpy as np
import pytest

from aerial_kedro.change.appearance import (
    AppearanceCriteria,
    CellReference,
    SceneMoments,
    colour_cells,
    colour_change,
    combined_score,
    conditional_colour_change,
    decode_colour_cells,
    decode_texture,
    gaussian_tail,
    robust_z,
    texture_change,
    texture_features,
    texture_slice,
)


def scene(seed: int, n: int = 200) -> np.ndarray:
    """``n`` 64 x 64 RGB chips of fields: smooth random colours with some texture."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(60, 160, size=(n, 1, 1, 3))
    noise = rng.normal(0, 8, size=(n, 64, 64, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def cells_of(chips: np.ndarray, clouds: np.ndarray | None = None) -> np.ndarray:
    masks = [None] * len(chips) if clouds is None else list(clouds)
    return decode_colour_cells([colour_cells(c, m) for c, m in zip(chips, masks, strict=True)])[0]


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


def moments(cb, ca, tb, ta) -> SceneMoments:
    return SceneMoments.of(cb, ca, tb, ta)


def test_moments_merge_like_one_pass():
    rng = np.random.default_rng(0)
    cb, ca = rng.normal(size=(2, 30, 256, 3))
    tb, ta = rng.normal(size=(2, 30, 5))
    whole = moments(cb, ca, tb, ta)
    split = moments(cb[:10], ca[:10], tb[:10], ta[:10]) + moments(
        cb[10:], ca[10:], tb[10:], ta[10:]
    )
    for a, b in zip(
        whole.colour_before.standardiser(), split.colour_before.standardiser(), strict=True
    ):
        np.testing.assert_allclose(a, b)
    for a, b in zip(
        whole.texture_after.standardiser(), split.texture_after.standardiser(), strict=True
    ):
        np.testing.assert_allclose(a, b)


def test_a_scene_wide_shift_is_no_change_and_a_local_change_stands_out():
    before = scene(1)
    # After: the whole scene darker, bluer and lower in contrast (season, haze, another sensor)...
    after = np.clip(before.astype(np.float32) * [0.6, 0.7, 0.9] + [10, 20, 40], 0, 255)
    after = after.astype(np.uint8)
    # ...and on chip 7 a new block of houses over a quarter of it (bright, grey).
    after[7, :32, :32] = 235
    cb, ca = cells_of(before), cells_of(after)
    tb = np.zeros((len(before), 4))
    ta = np.zeros((len(before), 4))
    m = moments(cb, ca, tb, ta)
    colour = colour_change(cb, ca, m, 0.95)
    assert int(np.argmax(colour)) == 7
    criteria = AppearanceCriteria()
    score = combined_score(colour, texture_change(tb, ta, m), criteria)
    flagged = np.flatnonzero(score >= criteria.threshold_z)
    assert flagged.tolist() == [7]
    # Compared without the per-date standardisation, every chip would differ by the shift.
    raw = np.sqrt(((ca - cb) ** 2).sum(axis=2)).mean(axis=1)
    assert np.median(raw) > 10


def test_a_quarter_changed_chip_scores_higher_with_a_high_cell_quantile_than_with_the_median():
    before = scene(2)
    after = before.copy()
    after[3, :24, :24] = 250  # 14 % of the chip
    cb, ca = cells_of(before), cells_of(after)
    m = moments(cb, ca, np.zeros((200, 2)), np.zeros((200, 2)))
    assert colour_change(cb, ca, m, 0.95)[3] > 3 * colour_change(cb, ca, m, 0.5)[3]


def test_robust_z_ignores_the_outliers_it_is_meant_to_find():
    values = np.r_[np.random.default_rng(3).normal(10, 2, 500), 1000.0]
    z = robust_z(values)
    assert abs(np.median(z)) < 1e-9 and 0.8 < np.std(z[:-1]) < 1.2 and z[-1] > 100
    assert robust_z(np.ones(5)).tolist() == [0.0] * 5  # no spread: nothing stands out


def test_a_scene_with_too_few_chips_is_refused():
    one = np.zeros((1, 256, 3))
    with pytest.raises(ValueError, match="at least 2 chips"):
        moments(one, one, np.zeros((1, 2)), np.zeros((1, 2))).texture_before.standardiser()


def test_gaussian_tail():
    assert gaussian_tail(0.0) == pytest.approx(0.5)
    assert gaussian_tail(3.0) == pytest.approx(0.00135, rel=1e-2)


def test_a_cloud_over_a_tenth_of_a_chip_is_not_change_when_its_cells_are_left_out():
    before = scene(4)
    after = before.copy()
    clouds = np.zeros((len(after), 64, 64), dtype=bool)
    clouds[5, :20, :20] = True  # a cloud over a tenth of chip 5 on the after date
    after[5, :20, :20] = 250
    after[9, 40:, 40:] = 235  # and real change (a new bright block) on chip 9
    cb = cells_of(before)
    blobs = [colour_cells(c, m) for c, m in zip(after, clouds, strict=True)]
    ca, cloudy = decode_colour_cells(blobs)
    texture = np.zeros((len(before), 3))
    criteria = AppearanceCriteria()

    def flagged(mask):
        m = SceneMoments.of(cb, ca, texture, texture, mask)
        colour = colour_change(cb, ca, m, 0.95, mask)
        return np.flatnonzero(combined_score(colour, texture_change(texture, texture, m), criteria)
                              >= criteria.threshold_z).tolist()  # fmt: skip

    assert 5 in flagged(None)  # the cloud alone sets chip 5's 95th-percentile cell
    assert flagged(cloudy) == [9]


def seasonal_scene(seed: int = 5, n: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """A third of the chips fields, the rest town. Between the dates every field turns from green
    to brown (the season) while the town stays grey: no per-band linear shift maps one date onto
    the other. On chip 7 (a field) a quarter turns grey instead: new houses."""
    rng = np.random.default_rng(seed)
    green, brown, grey = (60, 120, 50), (150, 110, 80), (125, 125, 125)
    field = np.arange(n) % 3 == 1
    before = np.where(field[:, None, None, None], green, grey).astype(np.float64)
    after = np.where(field[:, None, None, None], brown, grey).astype(np.float64)
    before = np.broadcast_to(before, (n, 64, 64, 3)) + rng.normal(0, 6, (n, 64, 64, 3))
    after = np.broadcast_to(after, (n, 64, 64, 3)) + rng.normal(0, 6, (n, 64, 64, 3))
    after[7, :32, :32] = grey
    return tuple(np.clip(d, 0, 255).astype(np.uint8) for d in (before, after))  # type: ignore[return-value]


def test_a_change_every_alike_cell_makes_is_no_change_a_different_one_is():
    before, after = seasonal_scene()
    cb, ca = cells_of(before), cells_of(after)
    flat = np.zeros((len(cb), 2))
    m = moments(cb, ca, flat, flat)
    ids = [f"c{i}" for i in range(len(cb))]
    reference = CellReference.of(ids, cb, ca, m)
    conditional = conditional_colour_change(ids, cb, ca, m, reference, 50, 0.95)
    z = robust_z(conditional)
    assert int(np.argmax(z)) == 7 and z[7] > 3
    assert np.sort(z)[-2] < 3  # no other chip stands out: the season is not change
    # The plain difference of the standardised colours sees the season on every field chip.
    plain = robust_z(colour_change(cb, ca, m, 0.95))
    fields = np.arange(len(cb)) % 3 == 1
    assert (plain[fields] >= 3).all() and not (plain[~fields] >= 3).any()


def test_a_reference_of_some_chips_still_judges_every_chip_with_its_own_cells():
    before, after = seasonal_scene(6)
    cb, ca = cells_of(before), cells_of(after)
    flat = np.zeros((len(cb), 2))
    m = moments(cb, ca, flat, flat)
    ids = [f"c{i}" for i in range(len(cb))]
    full = conditional_colour_change(ids, cb, ca, m, CellReference.of(ids, cb, ca, m), 50, 0.95)
    some = np.arange(len(cb)) % 4 == 0  # a quarter of the chips, fields and town; not chip 7
    reference = CellReference.of(
        [i for i, s in zip(ids, some, strict=True) if s], cb[some], ca[some], m
    )
    assert reference.holds(["c0", "c7"]).tolist() == [True, False]
    subset = conditional_colour_change(ids, cb, ca, m, reference, 50, 0.95)
    assert int(np.argmax(subset)) == 7
    assert np.corrcoef(full, subset)[0, 1] > 0.8
    # A chip the reference holds gets the same score either way the batch is cut.
    alone = conditional_colour_change(ids[:1], cb[:1], ca[:1], m, reference, 50, 0.95)
    np.testing.assert_allclose(alone, subset[:1])


def test_cloudy_cells_are_neither_judged_nor_neighbours_and_too_few_neighbours_are_refused():
    before, after = seasonal_scene(7)
    cb, ca = cells_of(before), cells_of(after)
    cloudy = np.zeros(cb.shape[:2], dtype=bool)
    cloudy[7, :] = True  # chip 7 wholly cloud on one date: no evidence of change
    flat = np.zeros((len(cb), 2))
    m = SceneMoments.of(cb, ca, flat, flat, cloudy)
    ids = [f"c{i}" for i in range(len(cb))]
    reference = CellReference.of(ids, cb, ca, m, cloudy)
    assert len(reference) == (len(cb) - 1) * 256
    scores = conditional_colour_change(ids, cb, ca, m, reference, 50, 0.95, cloudy)
    assert scores[7] == 0 and robust_z(scores).max() < 6
    with pytest.raises(ValueError, match="at least 2 neighbours"):
        conditional_colour_change(ids, cb, ca, m, reference, 1, 0.95, cloudy)
