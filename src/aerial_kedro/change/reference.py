"""Reference change labels (a raster of change pixels, or polygons of changed areas) -> the
changed fraction of every chip.

The reference is reprojected onto each chip's own pixel grid (chip CRS, ``resolution``) with
nearest-neighbour resampling, so a chip's fraction is the share of its ``chip_px`` x ``chip_px``
pixels that the reference calls changed, among those it labels at all. Reading goes by strips
of chip rows, each strip reading only the window of the reference under it (never the whole
raster; a label raster much finer than the chips is nearest-sampled to at most
:data:`MAX_OVERSAMPLING` pixels per chip pixel), so memory follows the strip, not the file.
The reference is opened like every raster input (:mod:`aerial_kedro.geo.raster_access`).

Label rasters without georeference (OSCD's ``change_labels.tif`` is pixel-aligned with the
images but carries no CRS) take it from the imagery: a raster of the same width and height
(the after date's first) lends its CRS and transform; a label raster of another size is refused
in one line naming both sizes (it was once stretched over the imagery's footprint, which turned
a 40 x 30 px file into "every chip changed").
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning, WindowError
from rasterio.transform import array_bounds
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window, from_bounds
from rasterio.windows import transform as window_transform

from aerial_kedro.geo.label_files import VECTOR_EXTENSIONS, read_label_table
from aerial_kedro.geo.raster_access import is_vrt_file, open_raster

# Source pixels read per destination pixel on a side, at most (finer labels are subsampled).
MAX_OVERSAMPLING = 4


def is_vector_reference(path: str) -> bool:
    """Polygons of changed areas (any vector format reference labels are read from) rather
    than a label raster."""
    return str(path).lower().endswith(VECTOR_EXTENSIONS)


def vector_changed_fraction(path: str, chips: pd.DataFrame) -> pd.DataFrame:
    """``chip_id, reference_fraction, reference_coverage`` from polygons outlining changed areas.

    Everything the polygons do not cover counts as unchanged, so every chip is labelled
    (coverage 1); its fraction is the area of the polygons' union inside the chip over the
    chip's area, computed exactly in the chip's CRS. Read like reference labels
    (:func:`~aerial_kedro.geo.label_files.read_label_table`: local or fsspec URL, one layer,
    a readable CRS), so every refusal is one line naming the file.
    """
    import geopandas as gpd
    import shapely

    try:
        polygons = gpd.GeoDataFrame(read_label_table(path))
    except ValueError as error:
        raise ValueError(f"change.reference: {error}") from None
    out = []
    for crs_text, part in chips.groupby("crs", sort=False):
        changed = shapely.union_all(polygons.to_crs(crs_text).geometry.make_valid().to_numpy())
        boxes = shapely.box(part["minx"], part["miny"], part["maxx"], part["maxy"])
        area = shapely.area(shapely.intersection(boxes, changed)) / shapely.area(boxes)
        out.append(
            pd.DataFrame(
                {"chip_id": part["chip_id"].to_numpy(), "reference_fraction": area,
                 "reference_coverage": 1.0}
            )
        )  # fmt: skip
    if not out:
        return pd.DataFrame(columns=["chip_id", "reference_fraction", "reference_coverage"])
    return pd.concat(out, ignore_index=True)


@dataclass(frozen=True)
class ReferenceMask:
    """A change label raster, described but not read: windows of it are read on demand
    (:meth:`read`), as float32: 1 = changed, 0 = unchanged, NaN = not labelled."""

    path: str
    change_value: int
    nodata: float | None
    shape: tuple[int, int]  # (height, width) of the label raster
    transform: Affine
    crs: CRS
    georeferenced_from: str  # the label file itself, or the imagery file it borrowed from

    def read(
        self, window: Window | None = None, out_shape: tuple[int, int] | None = None
    ) -> np.ndarray:
        """The changed mask of ``window`` (whole raster by default), nearest-sampled to
        ``out_shape`` when given."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with open_raster(self.path) as src:
                labels = src.read(1, window=window, out_shape=out_shape)
        changed = (labels == self.change_value).astype(np.float32)
        if self.nodata is not None:
            changed[labels == self.nodata] = np.nan
        return changed

    @property
    def changed(self) -> np.ndarray:
        """The whole mask (small label rasters and tests only: chips read it window by window)."""
        return self.read()


def _size(shape: Sequence[int]) -> str:
    return f"{shape[1]} x {shape[0]} px"


def _georeference(
    path: str, shape: tuple[int, int], candidates: Sequence[str]
) -> tuple[CRS, Affine, str]:
    """CRS and transform for an un-georeferenced ``(height, width)`` grid: those of the first
    of ``candidates`` (the after date's files first) with exactly that shape; one line naming
    both sizes otherwise (a label grid is never stretched over imagery of another size)."""
    metas = []
    for candidate in candidates:
        try:
            with open_raster(candidate) as src:
                if src.crs:
                    metas.append((candidate, src.crs, src.transform, tuple(src.shape)))
        except rasterio.errors.RasterioIOError:
            continue
    if not metas:
        raise ValueError(
            f"change.reference: '{path}' has no CRS and no georeferenced imagery to borrow one"
        )
    for candidate, crs, transform, raster_shape in metas:
        if raster_shape == tuple(shape):
            return crs, transform, candidate
    raise ValueError(
        f"change.reference: '{path}' has no georeference and is {_size(shape)}, but the after "
        f"date is {_size(metas[0][3])} ({metas[0][0]}); save it with a CRS or on the after "
        "date's pixel grid"
    )


def read_reference_mask(
    path: str,
    change_value: int,
    imagery: Sequence[str] = (),
    *,
    allow_vrt: bool = False,
) -> ReferenceMask:
    """Describe a change label raster (band 1): ``change_value`` = changed, other values
    unchanged, the raster's nodata = not labelled. Only the header is read here.

    The raster is opened like every raster input (:func:`~aerial_kedro.geo.raster_access.open_raster`:
    GeoTIFF, JPEG 2000, Erdas Imagine by extension; a ``*.vrt`` only with ``allow_vrt``, raw-band
    VRTs never). Without a CRS, the georeference comes from the first of ``imagery`` (after
    date first) of exactly the same size; another size is one line naming both."""
    if is_vrt_file(path) and not allow_vrt:
        raise ValueError(
            f"change.reference: '{path}' is a VRT, which can read any file or URL; VRTs are not "
            "opened unless trusted with scoring.allow_vrt=true"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            src = open_raster(path)
        except rasterio.errors.RasterioIOError as error:
            raise ValueError(f"change.reference: '{path}' cannot be read ({error})") from error
        with src:
            shape, nodata = (src.height, src.width), src.nodata
            crs, transform = src.crs, src.transform
    origin = path
    if not crs or transform.is_identity:
        crs, transform, origin = _georeference(path, shape, imagery)
    return ReferenceMask(
        path, change_value, nodata, shape, transform, CRS.from_user_input(crs), origin
    )


def chip_changed_fraction(
    mask: ReferenceMask,
    chips: pd.DataFrame,
    chip_px: int,
    resolution: float,
    *,
    rows_per_strip: int = 16,
) -> pd.DataFrame:
    """``chip_id, reference_fraction, reference_coverage`` of each chip of ``chips``.

    ``chips`` needs ``chip_id, crs, row, col``. ``reference_fraction`` = changed / labelled
    pixels of the chip (NaN when none is labelled); ``reference_coverage`` = labelled pixels /
    all pixels of the chip (chips partly outside the reference have coverage < 1).
    """
    out = []
    for crs_text, part in chips.groupby("crs", sort=False):
        dst_crs = CRS.from_user_input(crs_text)
        rows = part["row"].to_numpy(dtype=np.int64)
        cols = part["col"].to_numpy(dtype=np.int64)
        col0, n_cols = int(cols.min()), int(cols.max() - cols.min() + 1)
        for start in range(int(rows.min()), int(rows.max()) + 1, rows_per_strip):
            stop = min(start + rows_per_strip, int(rows.max()) + 1)
            in_strip = (rows >= start) & (rows < stop)
            if not in_strip.any():
                continue
            changed = _warp_strip(mask, dst_crs, start, stop, col0, n_cols, chip_px, resolution)
            blocks = changed.reshape(stop - start, chip_px, n_cols, chip_px)
            labelled = np.isfinite(blocks).sum(axis=(1, 3))
            hits = np.nansum(blocks, axis=(1, 3))
            i = rows[in_strip] - start
            j = cols[in_strip] - col0
            with np.errstate(invalid="ignore", divide="ignore"):
                fraction = np.where(labelled[i, j] > 0, hits[i, j] / labelled[i, j], np.nan)
            out.append(
                pd.DataFrame(
                    {
                        "chip_id": part["chip_id"].to_numpy()[in_strip],
                        "reference_fraction": fraction,
                        "reference_coverage": labelled[i, j] / float(chip_px * chip_px),
                    }
                )
            )
    if not out:
        return pd.DataFrame(columns=["chip_id", "reference_fraction", "reference_coverage"])
    return pd.concat(out, ignore_index=True)


def _warp_strip(
    mask: ReferenceMask,
    dst_crs: CRS,
    row_start: int,
    row_stop: int,
    col0: int,
    n_cols: int,
    chip_px: int,
    resolution: float,
) -> np.ndarray:
    """The mask on the chip pixel grid of chip rows ``row_start .. row_stop - 1``."""
    size = chip_px * resolution
    top = -row_start * size
    transform = Affine(resolution, 0.0, col0 * size, 0.0, -resolution, top)
    out = np.full(((row_stop - row_start) * chip_px, n_cols * chip_px), np.nan, dtype=np.float32)
    window = _source_window(mask, dst_crs, transform, out.shape)
    if window is None:
        return out
    out_shape = _read_shape(window, out.shape)
    source = mask.read(window, out_shape)
    src_transform = window_transform(window, mask.transform) * Affine.scale(
        window.width / out_shape[1], window.height / out_shape[0]
    )
    reproject(
        source=source,
        destination=out,
        src_transform=src_transform,
        src_crs=mask.crs,
        src_nodata=np.nan,
        dst_transform=transform,
        dst_crs=dst_crs,
        dst_nodata=np.nan,
        resampling=Resampling.nearest,
    )
    return out


def _source_window(
    mask: ReferenceMask, dst_crs: CRS, transform: Affine, shape: tuple[int, int]
) -> Window | None:
    """The window of the label raster under a destination grid (one pixel of margin), or
    ``None`` when the two do not meet."""
    bounds = array_bounds(shape[0], shape[1], transform)
    try:
        src_bounds = transform_bounds(dst_crs, mask.crs, *bounds)
    except Exception:  # the strip does not project into the label raster's CRS
        return None
    window = from_bounds(*src_bounds, transform=mask.transform)
    col0, row0 = math.floor(window.col_off) - 1, math.floor(window.row_off) - 1
    col1 = math.ceil(window.col_off + window.width) + 1
    row1 = math.ceil(window.row_off + window.height) + 1
    window = Window(col0, row0, col1 - col0, row1 - row0)
    whole = Window(0, 0, mask.shape[1], mask.shape[0])
    try:
        window = window.intersection(whole)
    except WindowError:
        return None
    return window if window.width > 0 and window.height > 0 else None


def _read_shape(window: Window, destination: tuple[int, int]) -> tuple[int, int]:
    """``(height, width)`` to read ``window`` at: whole, unless it holds over
    :data:`MAX_OVERSAMPLING` source pixels per destination pixel on a side (a finer label
    raster is nearest-sampled to that, so a strip's read stays the size of the strip)."""
    limit = MAX_OVERSAMPLING * max(destination)
    scale = max(window.width / limit, window.height / limit, 1.0)
    return max(1, math.ceil(window.height / scale)), max(1, math.ceil(window.width / scale))


def reference_truth(
    fractions: pd.DataFrame, min_fraction: float, min_coverage: float = 0.5
) -> pd.DataFrame:
    """``fractions`` with ``reference_changed`` (fraction >= ``min_fraction``) for chips whose
    labelled share is at least ``min_coverage``; the others are left out of the metrics."""
    usable = fractions[fractions["reference_coverage"] >= min_coverage].copy()
    usable["reference_changed"] = usable["reference_fraction"] >= min_fraction
    return usable
