"""Geospatial domain code: plain Python + numpy + rasterio (no Spark, no Kedro).

* :mod:`.chip_grid` - the global chip grid, raster inspection, chip planning over mosaics,
  reading (and resampling) chip pixels, empty-chip detection.
* :mod:`.class_map` - chip predictions -> class raster / GeoTIFF, plurality smoothing, shares.
* :mod:`.palette` - class colours.
* :mod:`.geojson` - chip polygons in lon/lat as GeoJSON.
* :mod:`.map_png` - a quick-look PNG of a class map (imports matplotlib).

Import the submodules directly; this package imports nothing so executors stay light.
"""
