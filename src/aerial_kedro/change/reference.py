"""Reference change labels (a raster of change pixels, or polygons of changed areas) -> the
changed fraction of every chip.

The reference is reprojected onto each chip's own pixel grid (chip CRS, ``resolution``) with
nearest-neighbour resampling, so a chip's fraction is the share of its ``chip_px`` x ``chip_px``
pixels that the reference calls changed, among those it labels at all. Reading goes by strips
of chip rows to keep memory flat on large scenes.

Label rasters without georeference (OSCD's ``change_labels.tif`` is pixel-aligned with the
images but carries no CRS) take it from the imagery: a raster of the same width and height
lends its CRS and transform; otherwise the label grid is stretched over the imagery's footprint
(OSCD Abu Dhabi: the second date is resampled to 782 x 795 px over the same bounds as the
785 x 799 px first date and labels).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import from_bounds
from rasterio.warp import reproject

VECTOR_EXTENSIONS = (".geojson", ".json", ".gpkg", ".shp", ".zip")


def is_vector_reference(path: str) -> bool:
    """Polygons of changed areas (GeoJSON, GeoPackage, Shapefile) rather than a label raster."""
    return str(path).lower().endswith(VECTOR_EXTENSIONS)


def vector_changed_fraction(path: str, chips: pd.DataFrame) -> pd.DataFrame:
    """``chip_id, reference_fraction, reference_coverage`` from polygons outlining changed areas.

    Everything the polygons do not cover counts as unchanged, so every chip is labelled
    (coverage 1); its fraction is the area of the polygons' union inside the chip over the
    chip's area, computed exactly in the chip's CRS.
    """
    import geopandas as gpd
    import shapely

    try:
        polygons = gpd.read_file(path)
    except Exception as error:  # pyogrio raises several types for unreadable files
        raise ValueError(f"change.reference: '{path}' cannot be read as polygons ({error})") from error
    if polygons.crs is None:
        raise ValueError(f"change.reference: '{path}' has no CRS")
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
    """Reference labels as float32: 1 = changed, 0 = unchanged, NaN = not labelled."""

    changed: np.ndarray
    transform: Affine
    crs: CRS
    georeferenced_from: str  # the label file itself, or the imagery file it borrowed from


def _georeference(shape: tuple[int, int], candidates: Sequence[str]) -> tuple[CRS, Affine, str]:
    """CRS and transform for an un-georeferenced ``(height, width)`` grid from ``candidates``."""
    metas = []
    for path in candidates:
        try:
            with rasterio.open(path) as src:
                if src.crs:
                    metas.append((path, src.crs, src.transform, src.shape, src.bounds))
        except rasterio.errors.RasterioIOError:
            continue
    if not metas:
        raise ValueError("change.reference has no CRS and no georeferenced imagery to borrow one")
    for path, crs, transform, raster_shape, _ in metas:
        if tuple(raster_shape) == tuple(shape):
            return crs, transform, path
    path, crs, _, _, bounds = metas[0]
    return crs, from_bounds(*bounds, width=shape[1], height=shape[0]), f"{path} (bounds)"


def read_reference_mask(
    path: str,
    change_value: int,
    imagery: Sequence[str] = (),
) -> ReferenceMask:
    """Read a change label raster (band 1): ``change_value`` = changed, other values unchanged,
    the raster's nodata = not labelled. Without a CRS, the georeference comes from ``imagery``
    (see the module docstring)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        try:
            src = rasterio.open(path)
        except rasterio.errors.RasterioIOError as error:
            raise ValueError(f"change.reference: '{path}' cannot be read ({error})") from error
        with src:
            labels = src.read(1)
            nodata = src.nodata
            crs, transform = src.crs, src.transform
    origin = path
    if not crs or transform.is_identity:
        crs, transform, origin = _georeference(labels.shape, imagery)
    changed = (labels == change_value).astype(np.float32)
    if nodata is not None:
        changed[labels == nodata] = np.nan
    return ReferenceMask(changed, transform, CRS.from_user_input(crs), origin)


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
    reproject(
        source=mask.changed,
        destination=out,
        src_transform=mask.transform,
        src_crs=mask.crs,
        src_nodata=np.nan,
        dst_transform=transform,
        dst_crs=dst_crs,
        dst_nodata=np.nan,
        resampling=Resampling.nearest,
    )
    return out


def reference_truth(
    fractions: pd.DataFrame, min_fraction: float, min_coverage: float = 0.5
) -> pd.DataFrame:
    """``fractions`` with ``reference_changed`` (fraction >= ``min_fraction``) for chips whose
    labelled share is at least ``min_coverage``; the others are left out of the metrics."""
    usable = fractions[fractions["reference_coverage"] >= min_coverage].copy()
    usable["reference_changed"] = usable["reference_fraction"] >= min_fraction
    return usable
