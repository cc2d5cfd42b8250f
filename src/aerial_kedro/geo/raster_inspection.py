"""What planning needs to know about a raster, read once on the driver: :class:`RasterMeta`.

:func:`inspect_raster` checks that a raster can be placed on the chip grid (it opens, has a
CRS and a north-up geotransform, enough bands) and records its georeferencing as plain values
that pickle and travel as dicts. A bad file is a :class:`RasterError` naming it, never a crash
of the whole listing (:func:`inspect_rasters`).

Valid bounds
------------
A raster's header may declare far more ground than it holds data for: a 375-byte sparse
GeoTIFF can declare a 5,120 km extent, and a scene may carry wide nodata margins. So
inspection also records :attr:`RasterMeta.valid_bounds`, and planning cuts chips only there.
It is found in two cheap steps, never by reading the full grid:

1. a GeoTIFF's blocks that were never written (the holes of a sparse file) hold no data: the
   window of the written ones is found from the file's block index (:func:`written_window`);
2. within it, the dataset mask (nodata, alpha or mask band) is read at reduced resolution (at
   most :data:`VALID_MASK_MAX_PX` pixels on the long side, through overviews when the file has
   them) and the box of its valid pixels is widened by one reduced pixel on each side, so it
   never cuts into data. Rasters without a mask (every pixel valid) skip this step, as do
   those whose reduced read would still decode over :data:`VALID_MASK_MAX_DECODED` source
   pixels (step 1's window stands).

When nothing valid is seen at all, the declared bounds stand (an unseen sliver of data is
not dropped) and ``max_chips`` bounds the plan.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import rasterio
import rasterio.errors
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Interleaving, MaskFlags
from rasterio.errors import RasterBlockError
from rasterio.windows import Window
from rasterio.windows import bounds as window_bounds

from aerial_kedro.geo.band_stack import is_stack_uri, open_stack
from aerial_kedro.geo.grid import crs_string
from aerial_kedro.geo.raster_access import open_raster

RasterSource = Any  # a path string / PathLike accepted by rasterio.open, or a stack: URI

Bounds = tuple[float, float, float, float]

# Long side, in pixels, of the reduced-resolution mask read to find the valid bounds.
VALID_MASK_MAX_PX = 1024
# Source pixels (blocks touched x block size x bands) a reduced mask read may decode: a sparse
# file declaring millions of blocks is not walked block by block.
VALID_MASK_MAX_DECODED = 100_000_000
# GeoTIFF blocks checked for having been written at all (a few microseconds each).
WRITTEN_BLOCKS_MAX_CHECKS = 250_000


class RasterError(Exception):
    """A raster that cannot be used: unreadable, not georeferenced, too few bands..."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    def __str__(self) -> str:
        return f"raster {self.path!r}: {self.reason}"


@dataclass(frozen=True)
class RasterMeta:
    """What planning needs to know about one raster (plain values, picklable).

    ``bounds`` is the extent the header declares; ``valid_bounds`` the part of it holding valid
    pixels (``None``: not known, the whole extent counts, see :attr:`data_bounds`).
    """

    path: str
    crs: str
    width: int
    height: int
    count: int
    dtype: str
    nodata: float | None
    transform: tuple[float, float, float, float, float, float]
    bounds: Bounds
    valid_bounds: Bounds | None = None

    @property
    def res(self) -> tuple[float, float]:
        a, _, _, _, e, _ = self.transform
        return abs(a), abs(e)

    @property
    def data_bounds(self) -> Bounds:
        """Where the raster has data: :attr:`valid_bounds` when known, else :attr:`bounds`."""
        return self.valid_bounds if self.valid_bounds is not None else self.bounds

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["transform"] = list(self.transform)
        data["bounds"] = list(self.bounds)
        data["valid_bounds"] = None if self.valid_bounds is None else list(self.valid_bounds)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RasterMeta:
        values = dict(data)
        values["transform"] = tuple(float(v) for v in values["transform"])
        values["bounds"] = tuple(float(v) for v in values["bounds"])
        if values.get("valid_bounds") is not None:
            values["valid_bounds"] = tuple(float(v) for v in values["valid_bounds"])
        return cls(**values)


def open_source(path: RasterSource, opener: Callable | None = None) -> rasterio.DatasetReader:
    """Open a raster source: a ``stack:[...]`` URI as the VRT of its band files
    (:mod:`.band_stack`), anything else with only the drivers :mod:`.raster_access` allows."""
    if is_stack_uri(path):
        return open_stack(path)
    return open_raster(path, opener)


def _reduced_shape(width: int, height: int, max_px: int) -> tuple[int, int]:
    """``(height, width)`` of a read at most ``max_px`` on the long side (never enlarged)."""
    scale = max(width / max_px, height / max_px, 1.0)
    return max(1, math.ceil(height / scale)), max(1, math.ceil(width / scale))


def _block_written(ds: rasterio.DatasetReader, bidx: int, row: int, col: int) -> bool:
    try:
        return ds.block_size(bidx, row, col) > 0
    except RasterBlockError:  # no offset / size recorded: a sparse file's hole
        return False


def written_window(ds: rasterio.DatasetReader) -> Window | None:
    """The window of a GeoTIFF's written blocks (a block a sparse file never wrote holds no
    data: GDAL reads it as nodata, else 0, which scoring counts as empty); ``None`` when no
    block is written. The whole raster for other formats, or past
    :data:`WRITTEN_BLOCKS_MAX_CHECKS` blocks (the check costs a few microseconds per block)."""
    whole = Window(0, 0, ds.width, ds.height)
    if ds.driver != "GTiff":
        return whole
    block_h, block_w = ds.block_shapes[0]
    n_rows, n_cols = math.ceil(ds.height / block_h), math.ceil(ds.width / block_w)
    bands = list(ds.indexes) if ds.interleaving == Interleaving.band else [1]
    if n_rows * n_cols * len(bands) > WRITTEN_BLOCKS_MAX_CHECKS:
        return whole
    written = np.zeros((n_rows, n_cols), dtype=bool)
    for bidx in bands:
        for row in range(n_rows):
            for col in range(n_cols):
                written[row, col] = written[row, col] or _block_written(ds, bidx, row, col)
    rows, cols = np.flatnonzero(written.any(axis=1)), np.flatnonzero(written.any(axis=0))
    if not len(rows):
        return None
    col0, row0 = int(cols[0]) * block_w, int(rows[0]) * block_h
    col1 = min(ds.width, (int(cols[-1]) + 1) * block_w)
    row1 = min(ds.height, (int(rows[-1]) + 1) * block_h)
    return Window(col0, row0, col1 - col0, row1 - row0)


def _decoded_pixels(ds: rasterio.DatasetReader, window: Window, out_shape: tuple[int, int]) -> int:
    """Source pixels GDAL decodes to read every band of ``window`` at ``out_shape`` (nearest
    sampling): a whole block per sampled block, on the coarsest overview still finer than asked."""
    out_h, out_w = out_shape
    factor = window.width / out_w
    width, height = window.width, window.height
    for level in sorted(ds.overviews(1)):
        if level <= factor:
            width, height = math.ceil(window.width / level), math.ceil(window.height / level)
    block_h, block_w = ds.block_shapes[0]
    across = min(out_w, math.ceil(width / block_w) + 1)  # + 1: a window may straddle blocks
    down = min(out_h, math.ceil(height / block_h) + 1)
    return across * down * block_h * block_w * ds.count


def _float_bounds(values: Iterable[Any]) -> Bounds:
    """``(left, bottom, right, top)`` as floats, from any four numbers."""
    left, bottom, right, top = (float(v) for v in values)
    return left, bottom, right, top


def valid_bounds(ds: rasterio.DatasetReader, max_px: int = VALID_MASK_MAX_PX) -> Bounds:
    """Bounding box of ``ds``'s valid pixels: within its written blocks (:func:`written_window`),
    where its dataset mask, read at reduced resolution, marks pixels valid.

    Widened by one reduced pixel on each side (a sample may sit that far inside the true edge)
    and clipped to the written blocks. The written blocks' bounds when every pixel is valid by
    construction or when the reduced read would decode over :data:`VALID_MASK_MAX_DECODED`
    source pixels; the declared bounds when nothing at all is seen.
    """
    left, bottom, right, top = ds.bounds
    declared = (left, bottom, right, top)
    window = written_window(ds)
    if window is None:
        return declared
    written = _float_bounds(window_bounds(window, ds.transform))
    if all(MaskFlags.all_valid in flags for flags in ds.mask_flag_enums):
        return written
    width, height = int(window.width), int(window.height)
    out_h, out_w = _reduced_shape(width, height, max_px)
    if _decoded_pixels(ds, window, (out_h, out_w)) > VALID_MASK_MAX_DECODED:
        return written
    mask = ds.dataset_mask(window=window, out_shape=(out_h, out_w)) > 0
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return declared
    sy, sx = height / out_h, width / out_w
    margin = 0 if (out_h, out_w) == (height, width) else 1
    col0 = max(0, math.floor((cols[0] - margin) * sx))
    col1 = min(width, math.ceil((cols[-1] + 1 + margin) * sx))
    row0 = max(0, math.floor((rows[0] - margin) * sy))
    row1 = min(height, math.ceil((rows[-1] + 1 + margin) * sy))
    valid = Window(window.col_off + col0, window.row_off + row0, col1 - col0, row1 - row0)
    return _float_bounds(window_bounds(valid, ds.transform))


def inspect_raster(
    path: RasterSource,
    *,
    min_bands: int = 3,
    allow_geographic: bool = True,
    opener: Callable | None = None,
) -> RasterMeta:
    """Read a raster's georeferencing and valid bounds; raise :class:`RasterError` if it
    cannot be chipped.

    ``path`` is passed to ``rasterio.open`` unchanged, so GDAL paths such as ``/vsiaz/...``
    or ``/vsicurl/...`` work; ``opener`` (e.g. ``fsspec_filesystem.open``) is passed on too.
    A ``stack:[...]`` string (:mod:`.band_stack`) is opened as the VRT of its band files.
    Geographic CRSs are accepted (planned on their UTM zone) unless ``allow_geographic=False``.
    The pixels are read only for :func:`valid_bounds`, after every header check has passed.
    """
    name = str(path)
    try:
        with open_source(path, opener) as ds:
            crs, transform = ds.crs, ds.transform
            meta = RasterMeta(
                path=name,
                crs=crs_string(crs) if crs else "",
                width=ds.width,
                height=ds.height,
                count=ds.count,
                dtype=ds.dtypes[0],
                nodata=None if ds.nodata is None else float(ds.nodata),
                transform=tuple(transform)[:6],
                bounds=tuple(ds.bounds),
            )
            _check(meta, transform, min_bands=min_bands, allow_geographic=allow_geographic)
            try:
                data = valid_bounds(ds)
            except rasterio.errors.RasterioError:  # unreadable pixels: reading reports them
                data = meta.bounds
    except RasterError:
        raise
    except Exception as exc:  # rasterio/GDAL raise several types for unreadable files
        raise RasterError(
            name, f"cannot be opened as a raster ({type(exc).__name__}: {exc})"
        ) from exc
    return meta if data == meta.bounds else replace(meta, valid_bounds=data)


def _check(meta: RasterMeta, transform: Affine, *, min_bands: int, allow_geographic: bool) -> None:
    """Raise :class:`RasterError` when the raster cannot be placed on the chip grid."""
    name = meta.path
    if not meta.crs:
        raise RasterError(name, "has no CRS (not georeferenced); cannot place it on the chip grid")
    if transform.is_identity:
        raise RasterError(name, "has no geotransform (not georeferenced)")
    if transform.b != 0 or transform.d != 0:
        raise RasterError(name, "has a rotated/sheared geotransform, which is not supported")
    if CRS.from_user_input(meta.crs).is_geographic and not allow_geographic:
        raise RasterError(
            name, f"has a geographic CRS ({meta.crs}, degrees); reproject it to a projected CRS"
        )
    if meta.count < min_bands:
        raise RasterError(name, f"has {meta.count} band(s), {min_bands} needed")


def inspect_rasters(
    paths: Iterable[RasterSource],
    *,
    min_bands: int = 3,
    allow_geographic: bool = True,
    opener: Callable | None = None,
) -> tuple[list[RasterMeta], list[RasterError]]:
    """Inspect every raster; never raises for a bad file: returns ``(ok_metas, problems)``."""
    metas: list[RasterMeta] = []
    problems: list[RasterError] = []
    for path in paths:
        try:
            metas.append(
                inspect_raster(
                    path, min_bands=min_bands, allow_geographic=allow_geographic, opener=opener
                )
            )
        except RasterError as err:
            problems.append(err)
    return metas, problems
