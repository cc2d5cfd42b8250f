"""Geospatial domain code: plain Python + numpy + rasterio (no Spark, no Kedro).

A chip goes grid -> inspection -> plan -> read, one module each (as torchgeo keeps samplers
apart from datasets):

* :mod:`.grid` - the global chip grid anchored at each CRS's origin: chip ids, bounds,
  transforms (pure maths, no raster opened).
* :mod:`.raster_inspection` - what planning needs to know about a raster (:class:`RasterMeta`):
  header checks and the bounds of its valid pixels.
* :mod:`.chip_planning` - which chips a mosaic of rasters yields (:func:`plan_chips`), UTM
  zones for geographic sources, the ``max_chips`` cap.
* :mod:`.chip_reader` - a chip's pixels read (and resampled, mosaicked) from its sources,
  empty-chip detection.
* :mod:`.class_map` - chip predictions -> class raster / GeoTIFF, plurality smoothing, shares.
* :mod:`.palette` - class colours.
* :mod:`.geojson` - chip polygons in lon/lat as GeoJSON.
* :mod:`.map_png` - a quick-look PNG of a class map (imports matplotlib).

Import the submodules directly; this package imports nothing so executors stay light.
"""
