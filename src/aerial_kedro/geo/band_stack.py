"""One file per band -> one RGB raster: a GDAL VRT stacking the red, green and blue files.

Sentinel-2 (and Landsat) products ship each band as its own file (``..._B04.tif`` red,
``..._B03.tif`` green, ``..._B02.tif`` blue). Scoring wants one 3-band raster per scene, so the
files of a scene are *stacked* virtually, without writing pixels anywhere:

* on the driver, :func:`group_band_files` finds the scenes among a folder's files by name and
  :func:`check_band_files` refuses, in one line naming the files, bands that do not share a
  size, CRS and geotransform (before any Spark work);
* the stack travels through the plan as a plain string, :func:`stack_uri` =
  ``stack:["<red>", "<green>", "<blue>"]``: short, readable in the predictions' ``source``
  column, picklable, and the same string for the same files (chip ids and run ids stay stable);
* wherever a raster is opened (driver or Spark executor), :func:`open_stack` turns the string
  into a VRT XML document and hands it to ``rasterio.open`` (GDAL opens VRT XML text given as
  the path). The VRT is rebuilt from the band files' headers, so nothing but the plan row has
  to reach the executor. The band files must be paths GDAL can open (local, ``/vsiaz/``,
  ``/vsicurl/`` ...); fsspec-only URLs cannot be referenced from inside a VRT.

Why not write a .vrt file next to the plan: executors may not see the driver's disk, and a
file would have to be cleaned up; the string is self-contained.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

import rasterio

from aerial_kedro.geo.raster_access import open_raster

STACK_PREFIX = "stack:"
COLOURS = ("red", "green", "blue")
# Sentinel-2 B04/B03/B02 and Landsat 8/9 B4/B3/B2 (same numbers): a band token between
# separators, e.g. "T32TPP_20180211T102141_B04.tif", "LC08_..._SR_B4.TIF", "B02_10m.jp2".
_BAND_TOKEN = re.compile(r"(?<![A-Za-z0-9])B0?([234])(?![0-9A-Za-z])", re.IGNORECASE)
_COLOUR_OF_NUMBER = {"4": "red", "3": "green", "2": "blue"}
_GDAL_TYPES = {
    "uint8": "Byte",
    "int8": "Int8",
    "uint16": "UInt16",
    "int16": "Int16",
    "uint32": "UInt32",
    "int32": "Int32",
    "float32": "Float32",
    "float64": "Float64",
}


def band_colour(path: str) -> str | None:
    """``red`` / ``green`` / ``blue`` when the file name carries a B04 / B03 / B02 token."""
    matches = _BAND_TOKEN.findall(posixpath.basename(path))
    return _COLOUR_OF_NUMBER[matches[-1]] if matches else None


def _scene_key(path: str) -> str:
    """The file's folder + name with its band token blanked: the files of one scene share it."""
    folder, name = posixpath.split(path)
    tokens = list(_BAND_TOKEN.finditer(name))
    last = tokens[-1]
    return posixpath.join(folder, name[: last.start()] + "B*" + name[last.end() :])


def group_band_files(files: Sequence[str]) -> tuple[list[str], list[str]]:
    """``(stack uris, other files)``: each scene with a red, green and blue file becomes a stack.

    Files with a band token whose scene lacks one of the three colours are returned with the
    other files (they are single-band rasters and get rejected as such, naming them). A scene
    with two files of one colour is ambiguous: ``ValueError`` naming both.
    """
    scenes: dict[str, dict[str, str]] = {}
    others: list[str] = []
    for path in files:
        colour = band_colour(path)
        if colour is None:
            others.append(path)
            continue
        bands = scenes.setdefault(_scene_key(path), {})
        if colour in bands:
            raise ValueError(f"two {colour} band files for one scene: {bands[colour]}, {path}")
        bands[colour] = path
    stacks = []
    for key in sorted(scenes):
        bands = scenes[key]
        if all(colour in bands for colour in COLOURS):
            stacks.append(stack_uri(bands["red"], bands["green"], bands["blue"]))
        else:
            others.extend(bands.values())
    return stacks, sorted(others)


def stack_uri(red: str, green: str, blue: str) -> str:
    """The plan-row string of a stack of three single-band files, in R, G, B order."""
    return STACK_PREFIX + json.dumps([str(red), str(green), str(blue)])


def stack_from_mapping(band_files: Mapping[str, str]) -> str:
    """:func:`stack_uri` of a ``{red: path, green: path, blue: path}`` mapping."""
    missing = [colour for colour in COLOURS if not band_files.get(colour)]
    if missing:
        raise ValueError(f"band_files needs {', '.join(missing)} (a path each)")
    return stack_uri(*(band_files[colour] for colour in COLOURS))


def is_stack_uri(path: object) -> bool:
    return isinstance(path, str) and path.startswith(STACK_PREFIX)


def stack_paths(uri: str) -> list[str]:
    """The red, green and blue file paths of a stack string."""
    paths = json.loads(uri[len(STACK_PREFIX) :])
    if not isinstance(paths, list) or len(paths) != 3:
        raise ValueError(f"not a stack of three band files: {uri}")
    return [str(path) for path in paths]


def stack_vrt_xml(paths: Sequence[str]) -> str:
    """VRT XML stacking band 1 of each file; ``ValueError`` (one line, naming the files) when
    they differ in size, CRS or geotransform, or a file has more than one band."""
    headers = []
    for path in paths:
        try:
            with open_raster(path) as ds:
                headers.append((path, ds.width, ds.height, ds.crs, ds.transform, ds.count,
                                ds.dtypes[0], ds.nodata))  # fmt: skip
        except rasterio.errors.RasterioError as exc:
            raise ValueError(f"band file {path} cannot be opened ({exc})") from exc
    first = headers[0]
    for header in headers:
        if header[5] != 1:
            raise ValueError(f"band file {header[0]} has {header[5]} bands, 1 expected")
        if header[1:3] != first[1:3]:
            sizes = ", ".join(f"{h[0]} ({h[1]} x {h[2]} px)" for h in headers)
            raise ValueError(f"band files differ in size: {sizes}")
        if header[3] != first[3]:
            crss = ", ".join(f"{h[0]} ({h[3]})" for h in headers)
            raise ValueError(f"band files differ in CRS: {crss}")
        if not header[4].almost_equals(first[4]):
            raise ValueError(f"band files are not on one pixel grid: {first[0]}, {header[0]}")
    dtypes = {h[6] for h in headers}
    if len(dtypes) > 1:
        raise ValueError(f"band files differ in data type ({sorted(dtypes)}): {', '.join(paths)}")
    _, width, height, crs, transform, _, dtype, _ = first
    gdal_type = _GDAL_TYPES.get(dtype, "Float64")
    bands = []
    for number, header in enumerate(headers, start=1):
        path, nodata = header[0], header[7]
        nodata_xml = "" if nodata is None else f"<NoDataValue>{nodata!r}</NoDataValue>"
        bands.append(
            f'<VRTRasterBand dataType="{gdal_type}" band="{number}">{nodata_xml}'
            f"<ColorInterp>{COLOURS[number - 1].capitalize()}</ColorInterp><SimpleSource>"
            f'<SourceFilename relativeToVRT="0">{escape(path)}</SourceFilename>'
            f"<SourceBand>1</SourceBand></SimpleSource></VRTRasterBand>"
        )
    srs = f"<SRS>{escape(crs.to_wkt())}</SRS>" if crs else ""
    geotransform = ", ".join(repr(float(v)) for v in transform.to_gdal())
    return (
        f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}">{srs}'
        f"<GeoTransform>{geotransform}</GeoTransform>{''.join(bands)}</VRTDataset>"
    )


def check_band_files(uri: str) -> None:
    """Raise the one-line ``ValueError`` of :func:`stack_vrt_xml` for a stack that cannot work."""
    stack_vrt_xml(stack_paths(uri))


def open_stack(uri: str) -> rasterio.DatasetReader:
    """The stack as an open 3-band rasterio dataset (a VRT over the band files)."""
    return rasterio.open(stack_vrt_xml(stack_paths(uri)), driver="VRT")
