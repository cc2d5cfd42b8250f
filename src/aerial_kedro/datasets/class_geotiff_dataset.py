"""A one-band class GeoTIFF (colour table, class names in the tags) on any fsspec filesystem."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from kedro.io.core import DatasetError

from aerial_kedro.datasets.fsspec_file import FsspecFileDataset
from aerial_kedro.geo.class_map import ClassRaster, read_class_raster

logger = logging.getLogger(__name__)


class ClassGeoTiffDataset(FsspecFileDataset[ClassRaster, ClassRaster]):
    """Saves and loads a :class:`aerial_kedro.geo.class_map.ClassRaster`.

    Saving a raster without georeference (:meth:`ClassRaster.empty`, e.g. a run over plain
    tiles) writes nothing and removes an older file at the path, so a stale map from a previous
    run is never mistaken for the current result.

    Example catalog entry::

        scoring.class_geotiff:
          type: aerial_kedro.datasets.ClassGeoTiffDataset
          filepath: data/08_reporting/scoring/land_use_classes.tif
    """

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
            data.write(path)
            return
        with tempfile.TemporaryDirectory() as scratch:
            local = str(Path(scratch) / self._filepath.name)
            data.write(local)
            self._fs.put_file(local, path)

    def load(self) -> ClassRaster:
        path = self._existing_path()
        if self._protocol == "file":
            return read_class_raster(path)
        with tempfile.TemporaryDirectory() as scratch:
            local = str(Path(scratch) / self._filepath.name)
            self._fs.get_file(path, local)
            return read_class_raster(local)
