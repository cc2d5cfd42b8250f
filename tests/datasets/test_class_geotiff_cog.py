"""The class raster is a valid Cloud Optimized GeoTIFF with categorical overviews, locally and
on Blob (Azurite), and keeps what a class GeoTIFF holds (colour table, class names, tags)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from conftest import CZECH_SCENE as SCENE
from rasterio.enums import Resampling

from aerial_kedro.datasets import ClassGeoTiffDataset
from aerial_kedro.geo.class_map import NODATA, ClassRaster

cogeo = pytest.importorskip("rio_cogeo.cogeo", reason="rio-cogeo (dev extra) validates COGs")

NAMES = ("Forest", "Crops", "Urban", "Water")


def class_raster(height: int = 600, width: int = 900) -> ClassRaster:
    """Classes on the real scene's CRS and origin at 10 m; each 2x2 block is 3 x one class and
    1 x another at its top-left pixel, the one GDAL's nearest-neighbour overview samples."""
    with rasterio.open(SCENE) as scene:
        crs = scene.crs.to_string()
        transform = scene.transform
    blocks = np.arange((height // 2) * (width // 2)).reshape(height // 2, width // 2)
    majority = (blocks % len(NAMES)).astype(np.uint8)
    classes = np.kron(majority, np.ones((2, 2), dtype=np.uint8))
    classes[0::2, 0::2] = (majority + 1) % len(NAMES)
    classes[:64, :64] = NODATA  # a nodata corner (outside the scored area)
    return ClassRaster(classes, transform, crs, NAMES, None, {"run_id": "cog-test"})


def assert_cog_with_class_overviews(path: str, raster: ClassRaster) -> None:
    valid, errors, warnings = cogeo.cog_validate(path, strict=True)
    assert valid and not errors and not warnings, (errors, warnings)
    with rasterio.open(path) as cog:
        assert cog.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert cog.overviews(1)[:2] == [2, 4]
        assert cog.block_shapes == [(256, 256)]
        overview = cog.read(
            1, out_shape=(cog.height // 2, cog.width // 2), resampling=Resampling.nearest
        )
        colormap = cog.colormap(1)
        tags = cog.tags()
    # The half-resolution overview holds each block's majority class, not the sampled pixel.
    assert np.array_equal(overview, raster.classes[1::2, 1::2])
    assert colormap[NODATA][3] == 0 and colormap[0][3] == 255
    assert tags["CLASS_2"] == "Urban" and tags["run_id"] == "cog-test"


def test_local_class_raster_is_a_valid_cog_and_round_trips(tmp_path):
    raster = class_raster()
    dataset = ClassGeoTiffDataset(filepath=str(tmp_path / "maps" / "classes.tif"))
    dataset.save(raster)

    assert_cog_with_class_overviews(str(tmp_path / "maps" / "classes.tif"), raster)
    loaded = dataset.load()
    assert np.array_equal(loaded.classes, raster.classes)
    assert loaded.class_names == NAMES and loaded.tags == {"run_id": "cog-test"}
    assert loaded.crs == raster.crs and loaded.transform == raster.transform


def test_scene_sized_map_is_a_valid_cog(tmp_path):
    """A whole-scene map is one pixel per chip (28 x 18 here): a single tile, still a COG."""
    raster = class_raster(18, 28)
    path = tmp_path / "small.tif"
    ClassGeoTiffDataset(filepath=str(path)).save(raster)
    valid, errors, _ = cogeo.cog_validate(str(path))
    assert valid and not errors


def test_class_raster_cog_on_blob(tmp_path_factory):
    from azure.storage.blob import BlobServiceClient
    from blob.azurite import Azurite

    server = Azurite.start(tmp_path_factory.mktemp("azurite"))
    try:
        BlobServiceClient.from_connection_string(server.connection_string).create_container("maps")
        credentials = {"connection_string": server.connection_string}
        dataset = ClassGeoTiffDataset(
            filepath="abfs://maps/run/classes.tif", credentials=credentials
        )
        raster = class_raster()
        dataset.save(raster)
        local = tmp_path_factory.mktemp("download") / "classes.tif"
        dataset._fs.get_file("maps/run/classes.tif", str(local))
        assert_cog_with_class_overviews(str(local), raster)
        assert np.array_equal(dataset.load().classes, raster.classes)
    finally:
        server.stop()


def test_preview_shows_the_classes_in_their_colours_for_kedro_viz(tmp_path):
    import base64
    import inspect
    import io

    from PIL import Image

    from aerial_kedro.geo.palette import class_colors, to_rgb

    raster = class_raster(height=40, width=60)  # one pixel per map cell, as scoring writes it
    dataset = ClassGeoTiffDataset(filepath=str(tmp_path / "classes.tif"))
    dataset.save(raster)

    png = Image.open(io.BytesIO(base64.b64decode(dataset.preview())))
    assert png.mode == "RGBA" and png.size == (60 * 7, 40 * 7)  # enlarged to >= 256 px, x7
    pixels = np.asarray(png)[::7, ::7]
    colours = np.array([to_rgb(c) for c in class_colors(NAMES)])
    valid = raster.classes != NODATA
    assert np.array_equal(pixels[..., :3][valid], colours[raster.classes[valid]])
    assert (pixels[..., 3][~valid] == 0).all() and (pixels[..., 3][valid] == 255).all()
    # kedro-viz picks the viewer by the name of preview()'s return annotation.
    assert str(inspect.signature(dataset.preview).return_annotation) == "ImagePreview"
