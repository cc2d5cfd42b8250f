"""Appearance change: descriptors round-trip, a scene-wide shift is not change, a local one is,
a change every alike cell makes (the season) is not change either, and the score is a robust z
whose threshold means the same on every scene."""

from __future__ import annotations

import numpy as np
import pytest

from aerial_kedro.change.appearance import (
    AppearanceCriteria,
    CellReference,
    GridPlaces,
    SceneMoments,
    buffer_cells,
    cloudy_cells,
    colour_change,
    combined_score,
    conditional_colour_change,
    gaussian_tail,
    neighbour_mean,
    robust_z,
    smooth_cells,
    spatial_context,
    texture_change,
)
from aerial_kedro.chips.descriptors import colour_cells, decode_colour_cells


def scene(seed: int, n: int = 200) -> np.ndarray:
    """``n`` 64 x 64 RGB chips of fields: smooth random colours with some texture."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(60, 160, size=(n, 1, 1, 3))
    noise = rng.normal(0, 8, size=(n, 64, 64, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def cells_of(chips: np.ndarray, clouds: np.ndarray | None = None) -> np.ndarray:
    masks = [None] * len(chips) if clouds is None else list(clouds)
    return decode_colour_cells([colour_cells(c, m) for c, m in zip(chips, masks, strict=True)])[0]


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


# --------------------------------------------------------------------------- cell window


def test_a_cell_window_averages_the_clear_cells_around_each_cell_inside_its_chip():
    cells = np.zeros((2, 256))
    cells[0, 5 * 16 + 5] = 9.0  # a lone surprising cell
    cells[1, 4 * 16 + 4 : 4 * 16 + 7] = 9.0  # a 3 x 3 block of them
    cells[1, 5 * 16 + 4 : 5 * 16 + 7] = 9.0
    cells[1, 6 * 16 + 4 : 6 * 16 + 7] = 9.0
    smoothed = smooth_cells(cells, 3)
    assert smoothed[0, 5 * 16 + 5] == pytest.approx(1.0)  # diluted to a ninth
    assert smoothed[1, 5 * 16 + 5] == pytest.approx(9.0)  # the block's centre keeps its value
    assert smoothed[1].max() == pytest.approx(9.0) and smoothed[0].max() == pytest.approx(1.0)
    np.testing.assert_array_equal(smooth_cells(cells, 1), cells)


def test_a_cell_window_leaves_cloudy_cells_out_and_stays_inside_the_chip():
    cells = np.ones((1, 256))
    cells[0, 0] = 4.0  # the chip's corner: 4 cells of its 3 x 3 block lie inside the chip
    cells[0, 1] = np.nan  # a cloudy neighbour: neither counted nor filled in
    smoothed = smooth_cells(cells, 3)
    assert smoothed[0, 0] == pytest.approx((4.0 + 1.0 + 1.0) / 3)
    assert np.isnan(smoothed[0, 1]) and np.isnan(smoothed).sum() == 1
    # The next chip's cells are not the corner's neighbours, whatever they hold.
    two = np.vstack([cells, np.full((1, 256), 100.0)])
    np.testing.assert_allclose(smooth_cells(two, 3)[0], smoothed[0])
    with pytest.raises(ValueError, match="odd number of cells"):
        smooth_cells(cells, 2)


def test_a_cell_window_quiets_scattered_noise_more_than_a_block_of_change():
    before = scene(8)
    after = before.copy()
    after[3, :24, :24] = 250  # a block of 6 x 6 cells on chip 3
    rng = np.random.default_rng(9)
    cb, ca = cells_of(before), cells_of(after)
    scattered = rng.choice(256, 20, replace=False)  # chip 11: 20 single cells off, scattered
    ca[11, scattered] += 150
    m = moments(cb, ca, np.zeros((200, 2)), np.zeros((200, 2)))
    plain, windowed = colour_change(cb, ca, m, 0.95), colour_change(cb, ca, m, 0.95, window=3)
    assert plain[11] > 0.5 * plain[3]  # per cell, the scattered cells look nearly as changed
    assert windowed[11] < 0.5 * windowed[3]  # averaged over 120 m, they do not


# --------------------------------------------------------------------------- spatial context


def grid_table() -> GridPlaces:
    """A 4 x 4 block of chips in one CRS, chip (1, 1) missing (cloudy), and one chip of another
    CRS at the same row and column as chip (0, 0)."""
    places = [(r, c) for r in range(4) for c in range(4) if (r, c) != (1, 1)]
    crs = ["EPSG:32633"] * len(places) + ["EPSG:32634"]
    rows = np.array([r for r, _ in places] + [0])
    cols = np.array([c for _, c in places] + [0])
    return GridPlaces(crs, rows, cols)


def test_the_neighbour_mean_counts_only_the_chips_compared_around_a_chip():
    places = grid_table()
    values = np.arange(len(places.row), dtype=np.float64)  # chip k scores k
    mean = neighbour_mean(places, values)
    places_of = zip(places.crs, places.row, places.col, strict=True)
    index = {(c, r, q): i for i, (c, r, q) in enumerate(places_of)}
    utm33 = "EPSG:32633"
    # Corner (0, 0): its neighbours (0, 1), (1, 0); (1, 1) is missing, the other CRS is not one.
    corner = index[(utm33, 0, 0)]
    assert mean[corner] == pytest.approx(
        (values[index[(utm33, 0, 1)]] + values[index[(utm33, 1, 0)]]) / 2
    )
    # (2, 2) has all 8 neighbours but the missing (1, 1): 7 of them.
    around = [(utm33, r, c) for r in (1, 2, 3) for c in (1, 2, 3) if (r, c) not in ((1, 1), (2, 2))]
    assert mean[index[(utm33, 2, 2)]] == pytest.approx(np.mean([values[index[k]] for k in around]))
    # The lone chip of the other CRS has no neighbour: 0, the scene's median chip.
    assert mean[index[("EPSG:32634", 0, 0)]] == 0.0


def test_the_neighbour_mean_refuses_two_chips_in_one_place():
    places = GridPlaces(["a", "a"], np.array([0, 0]), np.array([3, 3]))
    with pytest.raises(ValueError, match="share one place"):
        neighbour_mean(places, np.zeros(2))


def test_spatial_context_lifts_a_changed_area_above_an_equally_changed_lone_chip():
    rng = np.random.default_rng(10)
    side = 12
    rows, cols = np.divmod(np.arange(side * side), side)
    places = GridPlaces(["EPSG:32633"] * side * side, rows, cols)
    score = robust_z(rng.normal(0, 1, side * side))
    area = (rows >= 2) & (rows <= 4) & (cols >= 2) & (cols <= 4)  # a 3 x 3 chip construction site
    score[area] = 2.5
    lone = 9 * side + 9
    score[lone] = 2.6  # a lone chip as unusual as the site's, a little more
    with_context = spatial_context(score, places, 0.5)
    centre = 3 * side + 3
    assert score[lone] > score[centre] and with_context[centre] > with_context[lone]
    assert abs(np.median(with_context)) < 1e-9  # still a robust z in the scene
    np.testing.assert_array_equal(spatial_context(score, places, 0.0), score)


def test_the_combined_score_needs_the_grid_only_with_context():
    colour, texture = np.arange(10.0), np.zeros(10)
    plain = combined_score(colour, texture, AppearanceCriteria())
    np.testing.assert_allclose(plain, robust_z(robust_z(colour)))
    with pytest.raises(ValueError, match="needs the chips' grid places"):
        combined_score(colour, texture, AppearanceCriteria(context_weight=0.5))
    places = GridPlaces(["x"] * 10, np.zeros(10, dtype=int), np.arange(10))
    contextual = combined_score(colour, texture, AppearanceCriteria(context_weight=0.5), places)
    np.testing.assert_allclose(contextual, spatial_context(plain, places, 0.5))


# --------------------------------------------------------------------------- cloud buffer


def test_a_cloud_buffer_grows_cloudy_cells_inside_their_chip_only():
    cloudy = np.zeros((2, 256), dtype=bool)
    cloudy[0, 5 * 16 + 5] = True  # one cloudy cell in chip 0, none in chip 1
    grown = buffer_cells(cloudy, 2)
    assert grown[0].reshape(16, 16)[3:8, 3:8].all() and grown[0].sum() == 25
    assert not grown[1].any()  # the next chip's cells are not the cloud's neighbours
    corner = np.zeros((1, 256), dtype=bool)
    corner[0, 0] = True
    assert buffer_cells(corner, 1)[0].sum() == 4  # clipped at the chip's edge
    np.testing.assert_array_equal(buffer_cells(cloudy, 0), cloudy)


def test_cells_partly_cloud_like_can_be_left_out_with_a_lower_share():
    chip = np.full((64, 64, 3), 90, dtype=np.uint8)
    mask = np.zeros((64, 64), dtype=bool)
    mask[:4, :1] = True  # a quarter of cell 0's 16 pixels
    blob = colour_cells(chip, mask)
    assert not decode_colour_cells([blob])[1][0, 0]  # the default: half a cell or more
    assert decode_colour_cells([blob], cloudy_cell=0.2)[1][0, 0]
    criteria = AppearanceCriteria(cloudy_cell=0.2, cloud_buffer=1)
    _, share = decode_colour_cells([blob], criteria.cloudy_cell)
    left_out = cloudy_cells(share, np.zeros_like(share), criteria)
    assert left_out[0].sum() == 4  # the cell and its three neighbours inside the chip


# --------------------------------------------------------------------------- chip baseline


def test_a_chip_baseline_discounts_a_shift_over_the_whole_chip_not_a_local_change():
    before = scene(8)
    after = before.copy()
    after[3, :24, :24] = 250  # a local change on chip 3 (36 of 256 cells)
    after[5] = np.clip(after[5].astype(int) + 60, 0, 255).astype(np.uint8)  # haze over chip 5
    cb, ca = cells_of(before), cells_of(after)
    m = moments(cb, ca, np.zeros((200, 2)), np.zeros((200, 2)))
    plain = colour_change(cb, ca, m, 0.95)
    based = colour_change(cb, ca, m, 0.95, baseline=1.0)
    others = np.delete(plain, [3, 5])
    assert plain[5] > 3 * np.median(others)  # the hazy chip looks changed
    assert based[5] < np.median(others) and based[3] > 0.8 * plain[3]  # less its median cell
    assert based[3] == pytest.approx(plain[3] - np.median(_cell_change(cb, ca, m)[3]))


def _cell_change(cb: np.ndarray, ca: np.ndarray, m: SceneMoments) -> np.ndarray:
    mean_b, sd_b = m.colour_before.standardiser()
    mean_a, sd_a = m.colour_after.standardiser()
    return np.sqrt(((((ca - mean_a) / sd_a) - ((cb - mean_b) / sd_b)) ** 2).sum(axis=2))
