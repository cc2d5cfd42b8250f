"""Run outcome (a few numbers per chip, on the driver) -> class raster, GeoJSON, map figure,
shares, and the STAC Item describing them.

Only ``chip_id, status, class_index, confidence`` of each chip are collected from Spark; the
geometry comes from the plan, which the driver already holds. The PNG map is drawn over a
reduced-resolution preview of the scored imagery (at most :data:`BACKDROP_MAX_PX` on its long
side), read with :func:`~aerial_kedro.geo.preview.read_preview`.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from affine import Affine
from matplotlib.figure import Figure
from rasterio.errors import RasterioError

from aerial_kedro.chip_rows import EMPTY, PENDING, SCORED, UNREADABLE
from aerial_kedro.chip_rows import MAP_OUTCOME_COLUMNS as OUTCOME_COLUMNS
from aerial_kedro.datasets.class_geotiff_dataset import write_class_cog
from aerial_kedro.geo.class_map import (
    ClassRaster,
    class_shares,
    plurality_smooth,
    predictions_to_grid,
)
from aerial_kedro.geo.geojson import chips_to_geojson, unlocated_feature_collection
from aerial_kedro.geo.grid import ChipGrid
from aerial_kedro.geo.map_png import map_figure, shares_figure
from aerial_kedro.geo.palette import class_colors
from aerial_kedro.geo.preview import read_preview
from aerial_kedro.geo.radiometry import Radiometry
from aerial_kedro.geo.stac import CLASSES_ASSET, map_stac_item

# Long side of the imagery under the PNG map: enough for a 5-inch panel at 150 dpi (x2), and
# a bound on memory whatever the source's size (a county mosaic is never read at full size).
BACKDROP_MAX_PX = 1500
# Preview pixels per chip at most: finer shows nothing more at figure size.
_MAX_PX_PER_CHIP = 64

logger = logging.getLogger(__name__)


class DuplicateChipError(RuntimeError):
    """A chip appears more than once in a run's predictions (exactly-once was broken)."""


def chip_outcomes(
    plan: pd.DataFrame, outcome: pd.DataFrame, columns: Sequence[str] = OUTCOME_COLUMNS
) -> pd.DataFrame:
    """The plan with each chip's ``status``, ``class_index`` and ``confidence`` (``columns``).

    Chips without a prediction yet (run stopped by ``max_chunks``) get status ``pending``.
    """
    duplicated = outcome["chip_id"][outcome["chip_id"].duplicated()]
    if len(duplicated):
        raise DuplicateChipError(
            f"{duplicated.nunique()} chip(s) predicted more than once, e.g. {duplicated.iloc[0]}"
        )
    unknown = set(outcome["chip_id"]) - set(plan["chip_id"])
    if unknown:
        raise ValueError(f"{len(unknown)} predicted chip(s) not in the plan, e.g. {min(unknown)}")
    table = plan.merge(outcome[list(columns)], on="chip_id", how="left")
    table["status"] = table["status"].fillna(PENDING)
    return table


def status_counts(table: pd.DataFrame) -> dict[str, int]:
    counts = table["status"].value_counts()
    return {
        "planned": len(table),
        **{status: int(counts.get(status, 0)) for status in (SCORED, EMPTY, UNREADABLE, PENDING)},
    }


def primary_crs(table: pd.DataFrame) -> str:
    """The CRS holding the most chips: the map products are drawn in it."""
    return str(table["crs"].value_counts().idxmax())


def class_raster(
    table: pd.DataFrame,
    crs: str,
    class_names: Sequence[str],
    grid: ChipGrid,
    tags: Mapping[str, Any],
) -> ClassRaster:
    """One pixel per chip of ``crs``, covering every planned chip; unscored chips are nodata."""
    in_crs = table[table["crs"] == crs]
    rows = in_crs["row"].astype(np.int64)
    cols = in_crs["col"].astype(np.int64)
    extent = (
        int(rows.min()),
        int(cols.min()),
        int(rows.max() - rows.min() + 1),
        int(cols.max() - cols.min() + 1),
    )
    scored = in_crs[in_crs["status"] == SCORED]
    class_grid = predictions_to_grid(
        scored["row"].astype(np.int64),
        scored["col"].astype(np.int64),
        scored["class_index"].astype(np.int64),
        scored["confidence"].astype(np.float32),
        chip_size_m=grid.cell_size,
        extent=extent,
    )
    return ClassRaster(
        class_grid.classes,
        class_grid.transform,
        crs,
        tuple(class_names),
        tuple(class_colors(class_names)),
        {key: str(value) for key, value in tags.items()},
    )


def _scored_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    scored = table[table["status"] == SCORED]
    columns = ["chip_id", "class_index", "confidence"]
    if scored["kind"].eq("chip").any():
        columns += ["row", "col", "crs", "minx", "miny", "maxx", "maxy"]
    records = scored[columns].to_dict("records")
    for record in records:
        record["class_index"] = int(record["class_index"])
        for key in ("row", "col"):
            if key in record:
                record[key] = int(record[key])
    return records


def chips_geojson(table: pd.DataFrame, class_names: Sequence[str]) -> dict[str, Any]:
    """Scored chips as lon/lat polygons with class and confidence (tiles: no geometry)."""
    records = _scored_records(table)
    if (table["kind"] == "chip").all():
        return chips_to_geojson(records, class_names=class_names, with_probabilities=False)
    return unlocated_feature_collection(records, class_names)


def shares_of_scored(table: pd.DataFrame, class_names: Sequence[str]) -> dict[str, float]:
    """Fraction of scored items in each class (empty and unreadable chips do not count)."""
    indices = table.loc[table["status"] == SCORED, "class_index"].astype(np.int64).to_numpy()
    counts = np.bincount(indices, minlength=len(class_names))
    total = counts.sum()
    return {name: float(counts[i]) / total if total else 0.0 for i, name in enumerate(class_names)}


def smoothed_classes(raster: ClassRaster) -> np.ndarray:
    return plurality_smooth(raster.classes)


def map_title(source_name: str, counts: Mapping[str, int], model: str) -> str:
    title = f"Land use of {source_name}: {counts[SCORED]} chips classified by {model}"
    if counts[EMPTY] or counts[UNREADABLE]:
        title += f" ({counts[EMPTY]} empty, {counts[UNREADABLE]} unreadable)"
    if counts[PENDING]:
        title += f" - {counts[PENDING]} not scored yet"
    return title


def plan_sources(table: pd.DataFrame, crs: str) -> list[str]:
    """The source rasters (paths or ``stack:[...]`` strings) of the chips in ``crs``, in plan order."""
    in_crs = table[table["crs"] == crs]
    return list(dict.fromkeys(s for sources in in_crs["sources"] for s in sources))


def backdrop_grid(
    raster: ClassRaster, max_pixels: int = BACKDROP_MAX_PX
) -> tuple[Affine, tuple[int, int]]:
    """A pixel grid over exactly the class raster's extent, ``max_pixels`` at most on its long side.

    Pixels per chip may be fractional (a map wider than ``max_pixels`` chips gets less than
    one pixel per chip), so the cap holds for any map size.
    """
    rows, cols = raster.classes.shape
    per_chip = min(float(_MAX_PX_PER_CHIP), max_pixels / max(rows, cols, 1))
    height, width = max(1, round(rows * per_chip)), max(1, round(cols * per_chip))
    t = raster.transform
    transform = Affine(t.a * cols / width, 0.0, t.c, 0.0, t.e * rows / height, t.f)
    return transform, (height, width)


def read_backdrop(
    raster: ClassRaster,
    sources: Sequence[str],
    bands: Sequence[int] = (1, 2, 3),
    max_pixels: int = BACKDROP_MAX_PX,
    radiometry: Radiometry | None = None,
) -> np.ndarray | None:
    """``(h, w, 3)`` float RGB (NaN = no imagery) of ``sources`` on the raster's CRS and extent.

    ``None`` (with a warning) when the imagery cannot be read: the map is then drawn without
    it, since a figure must not fail a run whose class raster and GeoJSON are good.
    """
    if not sources or raster.crs is None or not raster.is_georeferenced:
        return None
    transform, shape = backdrop_grid(raster, max_pixels)
    try:
        return read_preview(list(sources), raster.crs, transform, shape, bands, radiometry)
    except (RasterioError, ValueError, OSError) as error:
        logger.warning("No imagery under the map of %d source(s): %s", len(sources), error)
        return None


def raster_map_figure(
    raster: ClassRaster,
    smoothed: np.ndarray | None,
    chip_size_m: float,
    title: str,
    sources: Sequence[str] = (),
    bands: Sequence[int] = (1, 2, 3),
    radiometry: Radiometry | None = None,
    unit: str = "chip",
) -> Figure:
    """The PNG map: the classes over the imagery of ``sources`` (opaque classes without any),
    shown through the run's ``radiometry`` (what the model saw); ``unit``: ``cell`` when
    overlapping chips were averaged into cells."""
    return map_figure(
        raster.classes,
        raster.class_names,
        raster.colors,
        chip_size_m,
        title,
        class_shares(raster.classes, raster.class_names),
        smoothed=smoothed,
        backdrop=read_backdrop(raster, sources, bands, radiometry=radiometry),
        unit=unit,
    )


def tiles_figure(shares: Mapping[str, float], class_names: Sequence[str], title: str) -> Figure:
    return shares_figure(shares, class_names, title=title)


# The files of the map products (catalog_scoring.yml, catalog_change.yml), by STAC asset key. The
# Item is saved in the same folder, so these relative names are its asset hrefs.
MAP_PRODUCTS = {
    CLASSES_ASSET: "land_use_classes.tif",
    "chips": "land_use_chips.geoparquet",
    "chips_geojson": "land_use_chips.geojson",
    "map": "land_use_map.png",
    "report": "class_shares.json",
}


def map_stac_item_of_run(
    raster: ClassRaster, run_id: str, properties: Mapping[str, Any]
) -> dict[str, Any]:
    """The STAC Item of a run's map products (:data:`MAP_PRODUCTS`), as a dict.

    rio-stac reads the footprint and projection from a file: ``raster`` is written to a scratch
    COG exactly as the class GeoTIFF dataset writes it, so the Item describes the saved map.
    """
    with tempfile.TemporaryDirectory(prefix="aerial_kedro_stac_") as scratch:
        path = write_class_cog(raster, str(Path(scratch) / MAP_PRODUCTS[CLASSES_ASSET]))
        return map_stac_item(run_id, path, MAP_PRODUCTS, properties)


def no_stac_item(run_id: str) -> dict[str, Any]:
    """What stands in for the STAC Item of a run without a georeferenced map (plain tiles)."""
    return {
        "run_id": run_id,
        "stac_item": None,
        "reason": "the run scored plain tiles: no georeferenced map to describe",
    }
