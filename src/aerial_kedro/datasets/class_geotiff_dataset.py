"""A one-band class raster as a Cloud Optimized GeoTIFF (colour table, class names in the tags,
overviews) on any fsspec filesystem."""

from __future__ import annotations

import base64
import io
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from kedro.io.core import DatasetError
from kedro_datasets._typing import ImagePreview
from PIL import Image

from aerial_kedro.datasets.fsspec_file import FsspecFileDataset, replacing
from aerial_kedro.geo.class_map import ClassRaster, colormap_entries, read_class_raster
from aerial_kedro.geo.palette import class_colors

logger = logging.getLogger(__name__)

# Class codes are categories: an overview pixel takes the most frequent class of the pixels it
# covers (GDAL's "mode" skips nodata), never an average that would invent a class in between.
OVERVIEW_RESAMPLING = "mode"
# Tiles and the smallest overview: GDAL's COG driver adds halvings until the whole raster fits
# one tile. 256 px (not the driver's 512) gives maps of a few hundred chips overviews too.
BLOCKSIZE = 256


def cog_creation_options(
    *, blocksize: int = BLOCKSIZE, overview_resampling: str = OVERVIEW_RESAMPLING
) -> dict[str, Any]:
    """GDAL COG driver options for a uint8 class raster (lossless, categorical overviews)."""
    return {
        "BLOCKSIZE": blocksize,
        "COMPRESS": "DEFLATE",
        "PREDICTOR": "NO",
        "OVERVIEWS": "AUTO",
        "OVERVIEW_RESAMPLING": overview_resampling,
        "RESAMPLING": "NEAREST",
    }


def write_class_cog(raster: ClassRaster, path: str, **options: Any) -> str:
    """Write ``raster`` to ``path`` as a Cloud Optimized GeoTIFF; returns ``path``.

    The class GeoTIFF is written by :meth:`ClassRaster.write` (colour table, tags, band
    description), then GDAL's COG driver copies it with tiles and overviews in the order a
    reader fetching byte ranges over HTTP expects. ``options`` override
    :func:`cog_creation_options`.
    """
    with tempfile.TemporaryDirectory() as scratch:
        plain = str(Path(scratch) / "classes.tif")
        raster.write(plain)
        with rasterio.open(plain) as src:
            rasterio.shutil.copy(src, path, driver="COG", **{**cog_creation_options(), **options})
    return path


class ClassGeoTiffDataset(FsspecFileDataset[ClassRaster, ClassRaster]):
    """Saves and loads a :class:`aerial_kedro.geo.class_map.ClassRaster` as a COG.

    The file is a Cloud Optimized GeoTIFF (GDAL's COG driver): 256-px tiles, deflate, and
    overviews whose pixels are the most frequent class below them, so QGIS, GDAL's /vsiaz/ or a
    web viewer read a zoomed-out view of a large map without reading all of it. The colour
    table, the class names (tags) and the band description are kept; any reader of a plain
    GeoTIFF reads it unchanged.

    A local file is written under a scratch name in the same folder and renamed onto the path
    (:func:`~aerial_kedro.datasets.fsspec_file.replacing`): readers and concurrent runs see the
    previous map or the complete new one, and a write that fails leaves the previous map. On
    Blob storage the upload commits the whole file at once.

    Saving a raster without georeference (:meth:`ClassRaster.empty`, e.g. a run over plain
    tiles) writes nothing and removes an older file at the path, so a stale map from a previous
    run is never mistaken for the current result.

    Example catalog entry::

        scoring.class_geotiff:
          type: aerial_kedro.datasets.ClassGeoTiffDataset
          filepath: data/08_reporting/scoring/land_use_classes.tif
          # save_args: {BLOCKSIZE: 512}   # any GDAL COG creation option
    """

    def __init__(
        self,
        *,
        filepath: str,
        save_args: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            filepath=filepath, credentials=credentials, fs_args=fs_args, metadata=metadata
        )
        self._save_args = dict(save_args or {})

    def save(self, data: ClassRaster) -> None:
        if not isinstance(data, ClassRaster):
            raise DatasetError(f"Expected a ClassRaster, got {type(data).__name__}")
        path = self._full_path()
        if not data.is_georeferenced:
            if self._fs.exists(path):
                self._fs.rm(path)
            logger.info("No georeferenced result in this run: no class GeoTIFF at %s", path)
            return
        if self._protocol == "file":
            self._make_local_parent(path)
            # Beside, then renamed: a reader or a failure midway never meets half a COG.
            with replacing(path) as scratch:
                write_class_cog(data, scratch, **self._save_args)
            return
        with tempfile.TemporaryDirectory() as scratch:
            local = str(Path(scratch) / self._filepath.name)
            write_class_cog(data, local, **self._save_args)
            self._fs.put_file(local, path)

    def load(self) -> ClassRaster:
        path = self._existing_path()
        if self._protocol == "file":
            return read_class_raster(path)
        with tempfile.TemporaryDirectory() as scratch:
            local = str(Path(scratch) / self._filepath.name)
            self._fs.get_file(path, local)
            return read_class_raster(local)

    def preview(self, min_side: int = 256) -> ImagePreview:
        """The class raster in its colours as a base64 PNG (kedro-viz shows it on the node).

        The raster holds one pixel per map cell, so it is enlarged (nearest neighbour, whole
        multiples) until its short side reaches ``min_side``; nodata is transparent.
        """
        return ImagePreview(base64.b64encode(class_raster_png(self.load(), min_side)).decode())

    def _describe(self) -> dict[str, Any]:
        return {**super()._describe(), "save_args": self._save_args}


def class_raster_png(raster: ClassRaster, min_side: int = 256) -> bytes:
    """PNG bytes of ``raster``'s classes in its colour table, enlarged to ``min_side``."""
    colors = raster.colors or class_colors(raster.class_names)
    lookup = np.zeros((256, 4), dtype=np.uint8)
    for code, rgba in colormap_entries(colors).items():
        lookup[code] = rgba
    scale = max(1, -(-min_side // max(1, min(raster.classes.shape))))
    rgba = lookup[np.repeat(np.repeat(raster.classes, scale, axis=0), scale, axis=1)]
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG")
    return buffer.getvalue()
