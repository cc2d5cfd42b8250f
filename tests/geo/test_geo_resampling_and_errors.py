"""Rasters not on the 10 m grid (20 m, 5 m, shifted origin) and rasters that cannot be used."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from conftest import CZECH_SCENE as SCENE
from rasterio.enums import Resampling
from rasterio.windows import Window

from aerial_kedro.geo.chip_planning import Chip, plan_chips_from_paths
from aerial_kedro.geo.chip_reader import ChipReader
from aerial_kedro.geo.grid import ChipGrid
from aerial_kedro.geo.raster_inspection import RasterError, inspect_raster, inspect_rasters

pytestmark = pytest.mark.skipif(not SCENE.exists(), reason=f"test raster not found: {SCENE}")


def _write(path: Path, data: np.ndarray, transform: Affine | None, crs: str | None) -> str:
    profile = {
        "driver": "GTiff",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": data.dtype.name,
    }
    if transform is not None:
        profile["transform"] = transform
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
    return str(path)


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, Affine, str]:
    with rasterio.open(SCENE) as ds:
        return ds.read(), ds.transform, ds.crs.to_string()


@pytest.fixture(scope="module")
def scene_pixels() -> dict[str, np.ndarray]:
    chips, _ = plan_chips_from_paths([str(SCENE)])
    with ChipReader() as reader:
        return {c.chip_id: reader.read(c) for c in chips}


def _correlations(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> np.ndarray:
    return np.array(
        [np.corrcoef(a[k].ravel().astype(float), b[k].ravel().astype(float))[0, 1] for k in b]
    )


def _compare(
    path: str, scene_pixels: dict[str, np.ndarray], resampling: Resampling | None = None
) -> np.ndarray:
    chips, problems = plan_chips_from_paths([path], ChipGrid(64, 10.0))
    assert problems == []
    meta = inspect_raster(path)
    left, bottom, right, top = meta.bounds
    ids = {c.chip_id for c in chips}
    # every chip fully inside this raster is one of the scene's chips, and vice versa
    assert ids <= set(scene_pixels)
    with rasterio.open(SCENE) as ds:
        s = ds.bounds
    inside_both = {
        c.chip_id for c in chips
        if max(left, s.left) <= c.minx and c.maxx <= min(right, s.right)
        and max(bottom, s.bottom) <= c.miny and c.maxy <= min(top, s.top)
    }  # fmt: skip
    assert inside_both == ids
    with ChipReader(resampling=resampling) as reader:
        pixels = {}
        for c in chips:
            px, valid = reader.read_with_mask(c)
            assert px.shape == (64, 64, 3) and px.dtype == np.uint8
            assert valid.all()
            pixels[c.chip_id] = px
    return _correlations(scene_pixels, pixels)


def test_20m_raster_is_resampled_onto_the_10m_grid(tmp_path, scene, scene_pixels):
    data, t, crs = scene
    h, w = data.shape[1] // 2, data.shape[2] // 2
    with rasterio.open(SCENE) as ds:
        coarse = ds.read(
            window=Window(0, 0, 2 * w, 2 * h), out_shape=(3, h, w), resampling=Resampling.average
        )
    path = _write(tmp_path / "s20.tif", coarse, Affine(20, 0, t.c, 0, -20, t.f), crs)
    assert inspect_raster(path).res == (20.0, 20.0)
    corr = _compare(path, scene_pixels)
    assert len(corr) == len(scene_pixels)  # the 10 m lost at the east/south edge cost no chip
    assert np.median(corr) > 0.97 and corr.min() > 0.85


def test_5m_raster_is_resampled_onto_the_10m_grid(tmp_path, scene, scene_pixels):
    data, t, crs = scene
    sub = data[:, :640, :960]  # a corner keeps the test fast
    fine = sub.repeat(2, axis=1).repeat(2, axis=2)
    path = _write(tmp_path / "s5.tif", fine, Affine(5, 0, t.c, 0, -5, t.f), crs)
    corr = _compare(path, scene_pixels)  # default for finer sources: average
    assert len(corr) > 100
    assert np.median(corr) > 0.99 and corr.min() > 0.95
    # each 10 m pixel is the average of its four identical 5 m pixels: exact
    chips, _ = plan_chips_from_paths([path])
    with ChipReader() as fine_reader, ChipReader() as ref_reader:
        for c in chips:
            ref = Chip.from_dict(c.to_dict() | {"sources": [str(SCENE)]})
            np.testing.assert_array_equal(fine_reader.read(c), ref_reader.read(ref))
    corr = _compare(path, scene_pixels, Resampling.bilinear)
    assert np.median(corr) > 0.97


def test_20m_nearest_places_pixels_exactly(tmp_path, scene):
    data, t, crs = scene
    coarse = data[:, :640:2, :960:2]
    path = _write(tmp_path / "c20.tif", coarse, Affine(20, 0, t.c, 0, -20, t.f), crs)
    chips, _ = plan_chips_from_paths([path])
    assert len(chips) == 9 * 14  # 6.4 km x 9.6 km from a corner 260 m, 620 m off the grid
    idx = np.arange(64)
    with ChipReader(resampling=Resampling.nearest) as reader:
        for c in chips:
            row_off = round((t.f - c.maxy) / 10)
            col_off = round((c.minx - t.c) / 10)
            expected = coarse[:, (row_off + idx) // 2][:, :, (col_off + idx) // 2]
            np.testing.assert_array_equal(reader.read(c), np.moveaxis(expected, 0, -1))


def test_shifted_origin_is_resampled(tmp_path, scene, scene_pixels):
    data, t, crs = scene
    sub = data[:, :640, :960]
    path = _write(tmp_path / "shifted.tif", sub, Affine(10, 0, t.c + 5, 0, -10, t.f - 5), crs)
    corr = _compare(path, scene_pixels)
    assert len(corr) > 100
    assert np.median(corr) > 0.95


def test_bad_rasters_are_reported_and_the_rest_planned(tmp_path, scene):
    data, t, _ = scene
    no_crs = _write(tmp_path / "no_crs.tif", data[:, :200, :200], t, None)
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"this is not a GeoTIFF\n" * 50)
    one_band = _write(tmp_path / "one_band.tif", data[:1, :200, :200], t, "EPSG:32633")
    missing = str(tmp_path / "missing.tif")
    paths = [no_crs, str(garbage), str(SCENE), one_band, missing]

    metas, problems = inspect_rasters(paths)
    assert [m.path for m in metas] == [str(SCENE)]
    assert [p.path for p in problems] == [no_crs, str(garbage), one_band, missing]
    reasons = {p.path: str(p) for p in problems}
    assert "no CRS" in reasons[no_crs] and "no_crs.tif" in reasons[no_crs]
    assert "cannot be opened" in reasons[str(garbage)] and "garbage.tif" in reasons[str(garbage)]
    assert "1 band" in reasons[one_band]
    assert "missing.tif" in reasons[missing]

    chips, problems2 = plan_chips_from_paths(paths)
    assert len(chips) == 17 * 27 and len(problems2) == 4

    with pytest.raises(RasterError, match="no_crs.tif.*no CRS"):
        inspect_raster(no_crs)
    err = pickle.loads(pickle.dumps(problems[0]))  # travels back from Spark executors
    assert isinstance(err, RasterError) and err.path == no_crs and str(err) == str(problems[0])


def test_unreadable_source_at_read_time(tmp_path):
    chips, _ = plan_chips_from_paths([str(SCENE)])
    gone = chips[0].to_dict() | {"sources": [str(tmp_path / "vanished.tif")]}
    with ChipReader() as reader, pytest.raises(RasterError, match="vanished.tif"):
        reader.read(Chip.from_dict(gone))


def test_mixed_resolution_mosaic(tmp_path, scene, scene_pixels):
    """A 5 m corner over a 20 m scene: the corner wins where it has data, 20 m fills the rest."""
    data, t, crs = scene
    fine = data[:, :640, :960].repeat(2, axis=1).repeat(2, axis=2)
    fine_path = _write(tmp_path / "corner5.tif", fine, Affine(5, 0, t.c, 0, -5, t.f), crs)
    h, w = data.shape[1] // 2, data.shape[2] // 2
    coarse_path = _write(
        tmp_path / "all20.tif",
        data[:, : 2 * h : 2, : 2 * w : 2],
        Affine(20, 0, t.c, 0, -20, t.f),
        crs,
    )
    chips, _ = plan_chips_from_paths([fine_path, coarse_path])
    assert len(chips) == len(scene_pixels)
    _, south, east, _ = inspect_raster(fine_path).bounds
    straddling = [c for c in chips if c.minx < east < c.maxx and c.miny >= south]
    assert len(straddling) == 9 and all(len(c.sources) == 2 for c in straddling)
    with ChipReader() as reader:
        for c in straddling:
            pixels, valid = reader.read_with_mask(c)
            assert valid.all()
            n_fine = round((east - c.minx) / 10)
            np.testing.assert_array_equal(pixels[:, :n_fine], scene_pixels[c.chip_id][:, :n_fine])
            only_fine = Chip.from_dict(c.to_dict() | {"sources": [fine_path]})
            _, valid = reader.read_with_mask(only_fine)
            assert valid[:, :n_fine].all() and not valid[:, n_fine:].any()
