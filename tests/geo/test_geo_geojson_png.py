"""GeoJSON chip polygons in lon/lat and the quick-look PNG."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from conftest import CZECH_SCENE as SCENE
from PIL import Image

from aerial_kedro.geo.chip_planning import plan_chips_from_paths
from aerial_kedro.geo.class_map import NODATA, class_shares, plurality_smooth
from aerial_kedro.geo.geojson import (
    chips_to_geojson,
    ring_points,
    unlocated_feature_collection,
    write_geojson,
)
from aerial_kedro.geo.map_png import (
    BACKDROP_ALPHA,
    NODATA_FACE,
    class_overlay,
    map_figure,
    render_map_png,
    shares_figure,
)
from aerial_kedro.geo.palette import EUROSAT_CLASSES, class_colors, to_float_rgb


def _ring_area(ring: list[list[float]]) -> float:
    xs, ys = np.array(ring).T
    return 0.5 * float(np.sum(xs[:-1] * ys[1:] - xs[1:] * ys[:-1]))


def test_ring_points():
    xs, ys = ring_points((0, 0, 2, 1))
    assert list(zip(xs, ys, strict=True)) == [(0, 0), (2, 0), (2, 1), (0, 1), (0, 0)]
    xs, ys = ring_points((0, 0, 2, 1), densify=3)
    assert len(xs) == 4 * 4 + 1 and (xs[0], ys[0]) == (xs[-1], ys[-1])


@pytest.mark.skipif(not SCENE.exists(), reason=f"test raster not found: {SCENE}")
def test_geojson_of_scene_chips(tmp_path):
    chips, _ = plan_chips_from_paths([str(SCENE)])
    rng = np.random.default_rng(5)
    records = []
    for c in chips:
        probs = rng.dirichlet(np.ones(10))
        records.append(
            c.to_dict()
            | {
                "class_index": int(probs.argmax()),
                "confidence": float(probs.max()),
                "probabilities": probs,
            }
        )
    fc = chips_to_geojson(records, class_names=EUROSAT_CLASSES, densify=2)
    assert fc["type"] == "FeatureCollection" and len(fc["features"]) == len(chips)
    lons, lats = [], []
    for feature, c, rec in zip(fc["features"], chips, records, strict=True):
        ring = feature["geometry"]["coordinates"][0]
        assert feature["geometry"]["type"] == "Polygon"
        assert ring[0] == ring[-1] and len(ring) == 13
        assert _ring_area(ring) > 0  # counter-clockwise exterior (RFC 7946)
        props = feature["properties"]
        assert props["chip_id"] == c.chip_id == feature["id"]
        assert props["class"] == EUROSAT_CLASSES[rec["class_index"]]
        assert props["confidence"] == pytest.approx(rec["confidence"], abs=1e-6)
        assert set(props["probabilities"]) == set(EUROSAT_CLASSES)
        ring_lons, ring_lats = np.array(ring).T
        assert (
            ring_lons.min() < c.lon < ring_lons.max() and ring_lats.min() < c.lat < ring_lats.max()
        )
        lons += ring_lons.tolist()
        lats += ring_lats.tolist()
    # the Czech scene: lon 15.605-15.857 E, lat 50.260-50.366 N
    assert 15.6 < min(lons) < max(lons) < 15.9
    assert 50.26 < min(lats) < max(lats) < 50.37
    # a 640 m chip is ~0.009 deg wide at 50 deg N and ~0.0058 deg high
    ring = np.array(fc["features"][0]["geometry"]["coordinates"][0])
    assert np.ptp(ring[:, 0]) == pytest.approx(640 / (111_320 * np.cos(np.radians(50.3))), rel=0.02)
    assert np.ptp(ring[:, 1]) == pytest.approx(640 / 111_200, rel=0.02)

    path = write_geojson(str(tmp_path / "chips.geojson"), fc)
    loaded = json.loads(Path(path).read_text(encoding="utf-8"))
    assert loaded == json.loads(json.dumps(fc))


def test_geojson_with_class_names_in_records_and_default_crs():
    recs = [{"chip_id": "a", "minx": 543360.0, "miny": 5578240.0, "maxx": 544000.0, "maxy": 5578880.0,
             "class": "Forest", "confidence": 0.8}]  # fmt: skip
    fc = chips_to_geojson(recs, "EPSG:32633", with_probabilities=False)
    props = fc["features"][0]["properties"]
    assert props == {"chip_id": "a", "class": "Forest", "confidence": 0.8}
    with pytest.raises(ValueError, match="no CRS"):
        chips_to_geojson(recs)


def test_every_panel_has_a_scale_bar_in_the_axes_km(tmp_path):
    import matplotlib.pyplot as plt
    from matplotlib_scalebar.scalebar import ScaleBar

    grid = np.zeros((10, 20), dtype=np.int16)
    figure = map_figure(grid, ["Forest"], chip_size_m=640.0, smoothed=grid)
    try:
        for axes in figure.axes:
            (bar,) = [artist for artist in axes.artists if isinstance(artist, ScaleBar)]
            # the panels are drawn in km (x from 0 to 20 chips x 0.64 km): one axis unit = 1 km
            assert (bar.dx, bar.units) == (1, "km") and axes.get_xlim() == (0, 12.8)
        figure.savefig(tmp_path / "map.png")  # the bar picks its length when drawn
    finally:
        plt.close(figure)


@pytest.mark.parametrize("two_panels", [False, True])
def test_render_map_png(tmp_path, two_panels):
    rng = np.random.default_rng(2)
    grid = rng.integers(0, 10, (17, 27)).astype(np.uint8)
    grid[:2, :3] = NODATA
    smoothed = plurality_smooth(grid) if two_panels else None
    path = render_map_png(
        str(tmp_path / "map.png"),
        grid,
        EUROSAT_CLASSES,
        None,
        chip_size_m=640.0,
        title="test map",
        shares=class_shares(grid, EUROSAT_CLASSES),
        smoothed=smoothed,
    )
    with Image.open(path) as im:
        assert im.format == "PNG"
        width, height = im.size
        assert 800 < width < 3000 and 300 < height < 2000
        assert width > height
        colours = len(set(map(tuple, np.asarray(im.convert("RGB")).reshape(-1, 3).tolist())))
    assert colours > 12  # ten classes + nodata + text/legend


def test_map_figure_and_shares_figure_are_closed_by_the_caller():
    import matplotlib.pyplot as plt

    grid = np.arange(30, dtype=np.uint8).reshape(3, 10) % 10
    figure = map_figure(grid, EUROSAT_CLASSES, smoothed=plurality_smooth(grid))
    assert len(figure.axes) == 2 and plt.fignum_exists(figure.number)
    plt.close(figure)

    shares = {name: (0.5 if name in ("Forest", "SeaLake") else 0.0) for name in EUROSAT_CLASSES}
    figure = shares_figure(shares, EUROSAT_CLASSES, title="30 tiles")
    bars = figure.axes[0].patches
    assert len(bars) == len(EUROSAT_CLASSES)
    widths = {name: bar.get_width() for name, bar in zip(EUROSAT_CLASSES, bars, strict=True)}
    assert widths["Forest"] == widths["SeaLake"] == 50.0
    colours = [bar.get_facecolor()[:3] for bar in bars]
    expected = [to_float_rgb(c) for c in class_colors(EUROSAT_CLASSES)]
    assert [tuple(round(v, 3) for v in c) for c in colours] == [
        tuple(round(v, 3) for v in c) for c in expected
    ]
    plt.close(figure)


def test_unlocated_features_keep_properties_without_geometry():
    collection = unlocated_feature_collection(
        [{"chip_id": "Forest/Forest_1.jpg", "class_index": 1, "confidence": 0.93}],
        class_names=EUROSAT_CLASSES,
    )
    (feature,) = collection["features"]
    assert feature["geometry"] is None and feature["id"] == "Forest/Forest_1.jpg"
    assert feature["properties"] == {
        "chip_id": "Forest/Forest_1.jpg",
        "class": "Forest",
        "class_index": 1,
        "confidence": 0.93,
    }


def test_class_overlay_is_translucent_and_clear_where_nothing_was_classified():
    grid = np.array([[0, 1], [NODATA, 2]], dtype=np.uint8)
    colors = class_colors(EUROSAT_CLASSES[:3])
    rgba = class_overlay(grid, colors)
    assert rgba.shape == (2, 2, 4)
    assert tuple(rgba[0, 1, :3]) == pytest.approx(to_float_rgb(colors[1]))
    assert rgba[0, 0, 3] == rgba[1, 1, 3] == pytest.approx(BACKDROP_ALPHA)
    assert rgba[1, 0, 3] == 0.0  # nodata: the imagery shows through untinted


def _scene_preview(shape: tuple[int, int]) -> np.ndarray:
    """The Czech scene decimated to ``shape`` (8-bit true colour -> float 0..1)."""
    with rasterio.open(SCENE) as src:
        data = src.read((1, 2, 3), out_shape=(3, *shape))
    return np.moveaxis(data, 0, -1).astype(np.float32) / 255.0


def _panels(grid: np.ndarray, backdrop: np.ndarray, tmp_path: Path) -> list[np.ndarray]:
    """Save the map PNG and cut each panel (its axes box) out of the written file."""
    import matplotlib.pyplot as plt

    figure = map_figure(grid, EUROSAT_CLASSES, chip_size_m=640.0, title="t", backdrop=backdrop)
    try:
        figure.canvas.draw()
        boxes = [ax.get_window_extent() for ax in figure.axes]
        figure.savefig(tmp_path / "map.png", dpi=figure.dpi, facecolor="white")
    finally:
        plt.close(figure)
    with Image.open(tmp_path / "map.png") as im:
        pixels = np.asarray(im.convert("RGB"), dtype=np.float32)
    height = pixels.shape[0]
    return [
        pixels[
            round(height - b.y1) + 2 : round(height - b.y0) - 2, round(b.x0) + 2 : round(b.x1) - 2
        ]
        for b in boxes
    ]


def _middle(panel: np.ndarray) -> np.ndarray:
    """The middle third of a panel: away from the scale bar and the north arrow."""
    h, w = panel.shape[:2]
    return panel[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3]


@pytest.mark.skipif(not SCENE.exists(), reason=f"test raster not found: {SCENE}")
def test_map_over_imagery_shows_the_ground_under_translucent_classes(tmp_path):
    grid = np.full((17, 27), EUROSAT_CLASSES.index("Forest"), dtype=np.uint8)
    backdrop = _scene_preview((290, 446))
    imagery, overlaid = map(_middle, _panels(grid, backdrop, tmp_path))
    forest = np.array(to_float_rgb(class_colors(EUROSAT_CLASSES)[1])) * 255
    # The ground is in both panels: fields, roads and villages, not one flat colour.
    assert imagery.std(axis=(0, 1)).min() > 10
    assert overlaid.std(axis=(0, 1)).min() > 5
    assert np.abs(overlaid - forest).max(axis=-1).mean() > 15
    # ... and the map panel is that same ground under the class colour at BACKDROP_ALPHA.
    expected = (1 - BACKDROP_ALPHA) * imagery.mean(axis=(0, 1)) + BACKDROP_ALPHA * forest
    np.testing.assert_allclose(overlaid.mean(axis=(0, 1)), expected, atol=4)


@pytest.mark.skipif(not SCENE.exists(), reason=f"test raster not found: {SCENE}")
def test_an_unclassified_map_still_shows_the_imagery(tmp_path):
    grid = np.full((17, 27), NODATA, dtype=np.uint8)
    backdrop = _scene_preview((290, 446))
    backdrop[:40] = np.nan  # no imagery in the top 14 %: drawn in the no-data grey, not black
    panels = _panels(grid, backdrop, tmp_path)
    h, w = panels[0].shape[:2]
    no_imagery = panels[0][h // 50 : h // 10, 2 * w // 5 : 3 * w // 5]
    np.testing.assert_allclose(
        no_imagery.mean(axis=(0, 1)), np.array(to_float_rgb(NODATA_FACE)) * 255, atol=1
    )
    imagery, overlaid = map(_middle, panels)
    assert imagery.std(axis=(0, 1)).min() > 10
    np.testing.assert_allclose(overlaid.mean(axis=(0, 1)), imagery.mean(axis=(0, 1)), atol=1)
