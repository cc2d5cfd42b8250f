"""Land-use change between two dates on one chip grid (numpy/pandas/rasterio; no Kedro, no Spark).

:mod:`.scores` change score, :mod:`.table` chip table and statuses, :mod:`.transitions`
transition matrix and net change, :mod:`.metrics` detection metrics, :mod:`.reference` reference
change raster -> per-chip changed fraction, :mod:`.raster` change GeoTIFF codes, :mod:`.figure`
the PNG.
"""
