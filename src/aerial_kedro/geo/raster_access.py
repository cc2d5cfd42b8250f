"""Opening user rasters with only the formats this project reads, nothing GDAL can sniff.

GDAL opens a file with whichever driver recognises its bytes. A VRT (XML) may point at any
local file as raw pixels or at any URL, and it is recognised whatever the file is called: a
``.tif`` holding VRT XML turned ``/etc/passwd`` into a chip's pixels and made executors send
HTTP requests. So rasters are opened with an explicit driver list: GeoTIFF (COG included),
JPEG 2000 and Erdas Imagine. VRT is opened only from files named ``*.vrt``, which planning
refuses unless ``scoring.allow_vrt`` trusts them, and even then raw-band VRTs (any file's bytes
as pixels) are refused: GDAL 3.10 has no run-time switch for them (``GDAL_VRT_ENABLE_RAWRASTERBAND``
is a build option), so the VRT's XML is checked before GDAL sees it.
The band-stack VRTs this project writes itself (:mod:`.band_stack`) are XML strings it built,
over band files opened here first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import rasterio

RASTER_DRIVERS = ("GTiff", "JP2OpenJPEG", "HFA")
VRT_EXTENSION = ".vrt"


_DRIVER_BY_EXTENSION = {".tif": "GTiff", ".tiff": "GTiff", ".jp2": "JP2OpenJPEG", ".img": "HFA",
                        VRT_EXTENSION: "VRT"}  # fmt: skip


def is_vrt_file(path: Any) -> bool:
    return str(path).lower().endswith(VRT_EXTENSION)


def allowed_drivers(path: Any) -> list[str]:
    """The GDAL drivers ``path`` may be opened with, in the order tried: the one its extension
    names (VRT only for ``*.vrt``), else each of :data:`RASTER_DRIVERS`."""
    name = str(path).lower()
    for extension, driver in _DRIVER_BY_EXTENSION.items():
        if name.endswith(extension):
            return [driver]
    return list(RASTER_DRIVERS)


def open_raster(path: Any, opener: Callable | None = None) -> rasterio.DatasetReader:
    """``rasterio.open`` with only :func:`allowed_drivers`; other content does not open."""
    kwargs: dict[str, Any] = {} if opener is None else {"opener": opener}
    if is_vrt_file(path):
        _refuse_raw_bands(path, opener)
    error: Exception | None = None
    for driver in allowed_drivers(path):
        try:
            return rasterio.open(path, driver=driver, **kwargs)
        except rasterio.errors.RasterioIOError as exc:
            error = exc
    raise rasterio.errors.RasterioIOError(
        f"{path}: not a {' / '.join(allowed_drivers(path))} raster ({error})"
    )


def _refuse_raw_bands(path: Any, opener: Callable | None) -> None:
    with (opener(str(path), "rb") if opener else open(path, "rb")) as stream:
        if b"VRTRawRasterBand" in stream.read(10_000_000):
            raise rasterio.errors.RasterioIOError(
                f"{path}: a raw-band VRT (reads any file's bytes as pixels) is never opened"
            )
