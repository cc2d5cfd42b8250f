"""The STAC Item of a scoring run, built from a real class COG placed on the real Czech scene."""

from __future__ import annotations

import json

import numpy as np
import pystac
import pystac.validation
import pytest
import rasterio
from affine import Affine
from conftest import CZECH_SCENE as SCENE
from rasterio.warp import transform_bounds

from aerial_kedro.datasets.class_geotiff_dataset import write_class_cog
from aerial_kedro.geo.class_map import NODATA, ClassRaster
from aerial_kedro.geo.stac import asset_kind, map_stac_item

CLASS_NAMES = ("AnnualCrop", "Forest", "Herbaceous Vegetation")
CHIP = 640.0
PRODUCTS = {
    "classes": "land_use_classes.tif",
    "chips": "land_use_chips.geoparquet",
    "chips_geojson": "land_use_chips.geojson",
    "map": "land_use_map.png",
    "report": "class_shares.json",
}


@pytest.fixture(scope="module")
def class_cog(tmp_path_factory) -> str:
    """A class COG on the scene's 640 m chip grid (EPSG:32633), one class per chip, a nodata corner."""
    with rasterio.open(SCENE) as src:
        left, bottom, right, top = src.bounds
        crs = src.crs.to_string()
    col0, row0 = int(left // CHIP), int(-(top // CHIP)) - 1
    n_cols, n_rows = int(-(-(right - col0 * CHIP) // CHIP)), int(-(-(-row0 * CHIP - bottom) // CHIP))
    classes = (np.arange(n_rows * n_cols).reshape(n_rows, n_cols) % len(CLASS_NAMES)).astype(np.uint8)
    classes[0, 0] = NODATA
    raster = ClassRaster(classes, Affine(CHIP, 0, col0 * CHIP, 0, -CHIP, -row0 * CHIP), crs, CLASS_NAMES)
    return write_class_cog(raster, str(tmp_path_factory.mktemp("stac") / "land_use_classes.tif"))


@pytest.fixture(scope="module")
def item(class_cog) -> dict:
    properties = {"datetime": "2022-03-19T10:05:59Z", "aerial:model": "logistic_regression",
                  "aerial:featurizer": "efficientnet_lite0", "aerial:source": SCENE.name}
    return map_stac_item("czech_s2_tci_20220319-3f2a9c1e", class_cog, PRODUCTS, properties)


def test_footprint_and_bbox_are_the_cog_in_lon_lat(item, class_cog):
    with rasterio.open(class_cog) as src:
        expected = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
    assert item["bbox"] == pytest.approx(expected, abs=1e-6)
    west, south, east, north = item["bbox"]
    assert 15.55 < west < 15.61 and 15.85 < east < 15.90 and 50.25 < south < 50.27 and 50.36 < north < 50.38
    ring = np.array(item["geometry"]["coordinates"][0])
    assert item["geometry"]["type"] == "Polygon" and len(ring) > 5 and (ring[0] == ring[-1]).all()
    assert ring[:, 0].min() == pytest.approx(west) and ring[:, 1].max() == pytest.approx(north)


def test_projection_fields_are_the_cogs_own(item, class_cog):
    properties = item["properties"]
    with rasterio.open(class_cog) as src:
        assert properties["proj:shape"] == [src.height, src.width]
        assert properties["proj:transform"][:6] == pytest.approx(list(src.transform)[:6])
    assert properties["proj:epsg"] == 32633  # rio-stac 0.12 writes projection extension v1.1
    assert properties["proj:bbox"] == pytest.approx(list(src.bounds))


def test_every_map_product_is_an_asset_with_its_media_type(item):
    assets = item["assets"]
    assert {key: asset["href"] for key, asset in assets.items()} == PRODUCTS
    assert assets["classes"]["type"] == pystac.MediaType.COG and assets["classes"]["roles"] == ["data"]
    assert assets["chips"]["type"] == "application/vnd.apache.parquet"
    assert assets["chips_geojson"]["type"] == "application/geo+json"
    assert assets["map"]["type"] == "image/png" and "overview" in assets["map"]["roles"]
    assert assets["report"]["roles"] == ["metadata"]
    assert item["id"] == "czech_s2_tci_20220319-3f2a9c1e"
    assert item["properties"]["datetime"] == "2022-03-19T10:05:59Z"
    assert item["properties"]["aerial:model"] == "logistic_regression"


def test_classes_carry_codes_names_and_colours_of_the_cog(item, class_cog):
    classes = item["assets"]["classes"]["classification:classes"]
    with rasterio.open(class_cog) as src:
        colors = json.loads(src.tags()["class_colors"])
    assert [(c["value"], c["title"]) for c in classes] == [
        (0, "AnnualCrop"), (1, "Forest"), (2, "Herbaceous Vegetation"), (255, "not classified")]
    assert classes[2]["name"] == "Herbaceous_Vegetation" and classes[-1]["nodata"] is True
    assert [c["color_hint"] for c in classes[:3]] == [c.lstrip("#").upper() for c in colors]
    assert any("classification" in uri for uri in item["stac_extensions"])
    assert any("projection" in uri for uri in item["stac_extensions"])


def test_the_item_is_valid_stac_and_reads_back_with_pystac(item):
    """Offline, pystac validates the core Item schema (bundled with it); the projection and
    classification extension schemas are fetched from stac-extensions.github.io, so they are
    left out here and their fields are checked above instead."""
    core_only = {**item, "stac_extensions": []}
    assert pystac.validation.validate_dict(core_only) == [
        "https://schemas.stacspec.org/v1.1.0/item-spec/json-schema/item.json"]
    with pytest.raises(pystac.errors.STACValidationError):
        pystac.validation.validate_dict({**core_only, "bbox": item["bbox"][:3]})
    parsed = pystac.Item.from_dict(item)
    assert parsed.datetime.year == 2022 and set(parsed.assets) == set(PRODUCTS)
    assert len(json.dumps(item)) < 4000  # small: a sidecar beside the products


def test_user_errors_name_the_culprit(class_cog):
    with pytest.raises(ValueError, match=r"^properties: 'datetime' is missing"):
        map_stac_item("run", class_cog, {}, {})
    with pytest.raises(ValueError, match=r"asset 'notes\.txt': unknown file type"):
        map_stac_item("run", class_cog, {"notes": "notes.txt"}, {"datetime": "2022-03-19"})
    assert asset_kind("abfs://aerial/08_reporting/scoring/land_use_classes.tif")[0] == pystac.MediaType.COG
