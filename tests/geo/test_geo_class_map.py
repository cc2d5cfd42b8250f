"""Class grid from predictions, the class GeoTIFF, plurality smoothing, class shares, palette."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from conftest import CZECH_SCENE as SCENE

from aerial_kedro.geo.chip_planning import plan_chips_from_paths
from aerial_kedro.geo.class_map import (
    NODATA,
    class_shares,
    plurality_smooth,
    predictions_to_grid,
    read_class_names,
    write_class_geotiff,
)
from aerial_kedro.geo.grid import grid_extent
from aerial_kedro.geo.palette import (
    EUROSAT_CLASSES,
    EUROSAT_COLORS,
    class_colors,
    to_hex,
    to_rgb,
)

N = NODATA


# ----------------------------------------------------------------------------- grid


def test_predictions_to_grid_places_chips_and_keeps_best_duplicate():
    rows = [-10, -10, -9, -8, -8]
    cols = [5, 6, 5, 7, 7]
    cls = [1, 2, 3, 4, 0]
    conf = [0.9, 0.8, 0.7, 0.4, 0.6]
    g = predictions_to_grid(rows, cols, cls, conf, chip_size_m=640.0)
    assert (g.row0, g.col0, g.shape) == (-10, 5, (3, 3))
    expected = np.array([[1, 2, N], [3, N, N], [N, N, 0]], np.uint8)
    np.testing.assert_array_equal(g.classes, expected)
    assert g.classes.dtype == np.uint8
    assert g.confidence[2, 2] == pytest.approx(0.6)
    assert np.isnan(g.confidence[0, 2])
    assert g.transform.c == 5 * 640.0 and g.transform.f == 10 * 640.0 and g.transform.a == 640.0
    wider = predictions_to_grid(rows, cols, cls, conf, extent=(-11, 4, 5, 5))
    assert wider.shape == (5, 5) and wider.classes[1, 1] == 1
    with pytest.raises(ValueError, match="outside"):
        predictions_to_grid(rows, cols, cls, conf, extent=(-9, 5, 3, 3))


def test_class_geotiff_on_the_scene(tmp_path):
    chips, _ = plan_chips_from_paths([str(SCENE)])
    row0, col0, n_rows, n_cols = grid_extent(chips)
    rng = np.random.default_rng(3)
    classes = rng.integers(0, 10, len(chips))
    kept = [i for i in range(len(chips)) if i % 13]  # some chips unclassified -> nodata
    g = predictions_to_grid(
        [chips[i].row for i in kept],
        [chips[i].col for i in kept],
        classes[kept],
        rng.random(len(kept)),
        chip_size_m=640.0,
        extent=(row0, col0, n_rows, n_cols),
    )
    path = write_class_geotiff(
        str(tmp_path / "classes.tif"),
        g.classes,
        g.transform,
        chips[0].crs,
        EUROSAT_CLASSES,
        class_colors(EUROSAT_CLASSES),
        tags={"scene": SCENE.name},
    )
    with rasterio.open(SCENE) as src:
        scene_bounds = src.bounds
    with rasterio.open(path) as ds:
        assert ds.crs.to_epsg() == 32633
        assert ds.count == 1 and ds.dtypes[0] == "uint8" and ds.nodata == NODATA
        assert ds.res == (640.0, 640.0)
        b = ds.bounds
        # the class raster is the chip-grid footprint: inside the scene, on 640 m lines
        assert scene_bounds.left <= b.left and b.right <= scene_bounds.right
        assert scene_bounds.bottom <= b.bottom and b.top <= scene_bounds.top
        for v in b:
            assert v % 640.0 == 0
        assert scene_bounds.left + 640 > b.left and scene_bounds.top - 640 < b.top
        cmap = ds.colormap(1)
        assert cmap[1][:3] == to_rgb(EUROSAT_COLORS["Forest"])
        assert cmap[NODATA][3] == 0
        tags = ds.tags()
        assert json.loads(tags["class_names"]) == list(EUROSAT_CLASSES)
        assert tags["CLASS_9"] == "SeaLake" and tags["scene"] == SCENE.name
        assert ds.tags(1)["CLASS_0"] == "AnnualCrop"
        written = ds.read(1)
        # every chip's centre falls in its own class pixel
        for i in kept[:50]:
            c = chips[i]
            r, k = ds.index((c.minx + c.maxx) / 2, (c.miny + c.maxy) / 2)
            assert written[r, k] == classes[i]
        assert (written == NODATA).sum() == len(chips) - len(kept)
    assert read_class_names(path) == list(EUROSAT_CLASSES)


def test_write_class_geotiff_rejects_unknown_class(tmp_path):
    g = np.array([[0, 12]], np.uint8)
    with pytest.raises(ValueError, match="class index 12"):
        write_class_geotiff(str(tmp_path / "x.tif"), g, predictions_to_grid([0], [0], [0]).transform,
                            "EPSG:32633", EUROSAT_CLASSES)  # fmt: skip


# ----------------------------------------------------------------------------- smoothing


def test_plurality_smooth_removes_salt_and_pepper():
    g = np.zeros((5, 5), np.uint8)
    g[2, 2] = 3
    out = plurality_smooth(g)
    assert (out == 0).all()
    assert g[2, 2] == 3  # input untouched


def test_plurality_smooth_ties_keep_the_centre():
    # centre 1 has 4 votes (itself + 3), class 2 has 4 votes + class 0 one: tie -> keep 1
    g = np.array([[1, 1, 2], [1, 1, 2], [2, 2, 0]], np.uint8)
    assert plurality_smooth(g)[1, 1] == 1
    # two other classes tie above the centre's count: keep the centre
    g = np.array([[2, 2, 2], [3, 1, 3], [3, 3, 2]], np.uint8)
    assert plurality_smooth(g)[1, 1] == 1
    # one other class strictly ahead: it wins
    g = np.array([[2, 2, 2], [2, 1, 3], [3, 3, 2]], np.uint8)
    assert plurality_smooth(g)[1, 1] == 2


def test_plurality_smooth_nodata():
    g = np.array([[N, N, N], [N, 4, N], [N, N, N]], np.uint8)
    np.testing.assert_array_equal(plurality_smooth(g), g)  # lone valid cell keeps its class
    g = np.array([[N, 5, 5], [N, 4, 5], [N, N, N]], np.uint8)
    out = plurality_smooth(g)
    assert out[1, 1] == 5  # 5 has 3 votes, 4 one; nodata does not vote
    assert (out[g == N] == N).all()  # nodata stays nodata
    # nodata never spreads into valid cells, even when it surrounds them
    g = np.full((4, 4), N, np.uint8)
    g[1, 1] = 2
    g[1, 2] = 7
    out = plurality_smooth(g)
    assert out[1, 1] == 2 and out[1, 2] == 7


def test_plurality_smooth_edges_and_iterations():
    g = np.array([[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 2, 2], [0, 0, 2, 2]], np.uint8)
    out = plurality_smooth(g)
    assert out[0, 0] == 0  # corner: 3 zeros vs itself
    assert out[3, 3] == 2  # corner block of 2s survives (4 votes vs 0)
    np.testing.assert_array_equal(
        plurality_smooth(g, iterations=5), plurality_smooth(plurality_smooth(g))
    )


def test_class_shares():
    g = np.array([[0, 0, 1], [2, N, N]], np.uint8)
    shares = class_shares(g, ["a", "b", "c", "d"])
    assert list(shares) == ["a", "b", "c", "d"]
    assert shares == pytest.approx({"a": 0.5, "b": 0.25, "c": 0.25, "d": 0.0})
    assert sum(shares.values()) == pytest.approx(1.0)
    assert sum(class_shares(np.full((2, 2), N, np.uint8), ["a"]).values()) == 0.0
    rng = np.random.default_rng(0)
    big = rng.integers(0, 11, (30, 40)).astype(np.uint8)
    big[big == 10] = N
    assert sum(class_shares(big, EUROSAT_CLASSES).values()) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        class_shares(np.array([[3]], np.uint8), ["a"])


# ----------------------------------------------------------------------------- palette


def test_palette_eurosat_colours_are_distinct_and_named():
    colors = class_colors(EUROSAT_CLASSES)
    assert len(set(colors)) == 10
    rgb = np.array([to_rgb(c) for c in colors], float)
    dists = np.linalg.norm(rgb[:, None] - rgb[None], axis=-1)
    assert dists[~np.eye(10, dtype=bool)].min() > 55  # legible: no two colours too close
    forest, pasture = to_rgb(EUROSAT_COLORS["Forest"]), to_rgb(EUROSAT_COLORS["Pasture"])
    assert forest[1] > forest[0] and sum(forest) < sum(pasture)  # dark vs light green
    river, sea = to_rgb(EUROSAT_COLORS["River"]), to_rgb(EUROSAT_COLORS["SeaLake"])
    assert river[2] > river[0] and sea[2] > sea[0] and sum(sea) < sum(river)


def test_palette_name_matching_and_fallback():
    assert class_colors(["forest", "Sea Lake", "herbaceous_vegetation"]) == [
        EUROSAT_COLORS["Forest"],
        EUROSAT_COLORS["SeaLake"],
        EUROSAT_COLORS["HerbaceousVegetation"],
    ]
    mixed = class_colors(["Forest", "Glacier", "Vineyard", "Forest"])
    assert mixed[0] == mixed[3] == EUROSAT_COLORS["Forest"]
    assert len({mixed[0], mixed[1], mixed[2]}) == 3
    many = class_colors([f"class {i}" for i in 25 * [0]] + [f"c{i}" for i in range(20)])
    assert len(many) == 45
    assert len(set(class_colors([f"c{i}" for i in range(20)]))) == 20
    assert to_hex((1.0, 0.5, 0.0)) == "#ff8000" and to_hex((255, 0, 0)) == "#ff0000"
    assert to_rgb("#abc") == (0xAA, 0xBB, 0xCC)
