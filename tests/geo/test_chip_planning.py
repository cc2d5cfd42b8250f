"""Planning chips over real rasters: whole scene, partial mosaics, CRS groups, GDAL paths."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from conftest import CZECH_PARTS as PARTS
from conftest import CZECH_SCENE as SCENE
from conftest import CZECH_SCENE_BOUNDS as SCENE_BOUNDS
from conftest import RASTERS

from aerial_kedro.geo.chip_planning import Chip, box_covered, plan_chips, plan_chips_from_paths
from aerial_kedro.geo.chip_reader import read_chip
from aerial_kedro.geo.grid import chip_bounds, grid_extent
from aerial_kedro.geo.raster_inspection import RasterMeta, inspect_raster

pytestmark = pytest.mark.skipif(not SCENE.exists(), reason=f"test rasters not found in {RASTERS}")


def test_box_covered_union():
    box = (0, 0, 10, 10)
    assert box_covered(box, [(0, 0, 5, 10), (5, 0, 10, 10)])
    assert box_covered(box, [(0, 0, 10, 5), (0, 5, 6, 10), (4, 4, 12, 12)])
    assert not box_covered(box, [(0, 0, 5, 10), (5, 0, 10, 9)])
    assert not box_covered(box, [(0, 0, 5, 5), (5, 5, 10, 10)])  # diagonal only
    assert not box_covered(box, [])


def test_plan_whole_scene(scene_chips):
    assert len(scene_chips) == 17 * 27
    ids = [c.chip_id for c in scene_chips]
    assert len(set(ids)) == len(ids)
    left, bottom, right, top = SCENE_BOUNDS
    for c in scene_chips:
        assert c.chip_id == f"32633_{c.row}_{c.col}"
        assert (c.minx, c.miny, c.maxx, c.maxy) == chip_bounds(c.row, c.col, 640.0)
        assert left <= c.minx and c.maxx <= right and bottom <= c.miny and c.maxy <= top
        assert 15.6 < c.lon < 15.86 and 50.26 < c.lat < 50.37
        assert c.sources == (str(SCENE),)
    assert grid_extent(scene_chips) == (-8717, 849, 17, 27)
    # stable: planning again gives the same chips; chips travel as plain dicts / pickles
    again, _ = plan_chips_from_paths([str(SCENE)])
    assert again == scene_chips
    first = scene_chips[0]
    assert Chip.from_dict(first.to_dict()) == first
    assert pickle.loads(pickle.dumps(first)) == first
    assert all(isinstance(v, (str, int, float, list)) for v in first.to_dict().values())


def test_partial_mosaic_only_plans_covered_chips(scene_chips):
    # parts 0 (NW) and 3 (SE) touch only at a corner: no chip may straddle into 1 or 2
    diagonal, _ = plan_chips_from_paths([str(PARTS[0]), str(PARTS[3])])
    metas = [inspect_raster(str(p)) for p in (PARTS[0], PARTS[3])]
    for c in diagonal:
        assert len(c.sources) == 1
        b = next(m.bounds for m in metas if m.path == c.sources[0])
        assert b[0] <= c.minx and c.maxx <= b[2] and b[1] <= c.miny and c.maxy <= b[3]
    whole_ids = {c.chip_id for c in scene_chips}
    assert {c.chip_id for c in diagonal} < whole_ids


def test_plan_groups_by_crs():
    meta = inspect_raster(str(SCENE))
    other = RasterMeta(**{**meta.to_dict(), "path": "other.tif", "crs": "EPSG:32634"})
    assert RasterMeta.from_dict(meta.to_dict()) == meta
    chips = plan_chips([meta, RasterMeta.from_dict(other.to_dict())])
    assert {c.crs for c in chips} == {"EPSG:32633", "EPSG:32634"}
    assert len(chips) == 2 * 17 * 27
    assert {c.chip_id.split("_")[0] for c in chips} == {"32633", "32634"}


def test_remote_style_paths_are_passed_to_rasterio():
    # a GDAL virtual path: never checked with os.path, opened by rasterio/GDAL
    vsi = f"/vsisubfile/0_{SCENE.stat().st_size},{SCENE}"
    meta = inspect_raster(vsi)
    assert meta.path == vsi and meta.crs == "EPSG:32633"
    chips = plan_chips([meta])
    np.testing.assert_array_equal(
        read_chip(chips[0]), read_chip(plan_chips_from_paths([str(SCENE)])[0][0])
    )


def test_fsspec_opener():
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("file")
    meta = inspect_raster(str(SCENE), opener=fs.open)
    chip = plan_chips([meta])[0]
    np.testing.assert_array_equal(read_chip(chip, opener=fs.open), read_chip(chip))
