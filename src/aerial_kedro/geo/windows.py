"""Overlapping windows -> cells: maps finer than one chip.

With ``scoring.chip_stride_px`` below the chip size, chips are windows that overlap
(:class:`~aerial_kedro.geo.grid.ChipGrid`): window ``(row, col)`` covers the ``k x k``
cells from cell ``(row, col)``. A cell's class probabilities are the mean of the scored windows
covering it (up to ``k**2``, fewer at the edges): each window sees the cell with other context,
and averaging them is the usual sliding-window estimate. The cells then stand in for chips in
every map product (class raster, GeoJSON, shares, change), one row each with the same columns
as a chip's outcome.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import shapely
from rasterio.warp import transform as warp_transform

from aerial_kedro.chip_rows import EMPTY, PENDING, SCORED, UNREADABLE
from aerial_kedro.geo.chip_planning import footprint
from aerial_kedro.geo.grid import ChipGrid, crs_key
from aerial_kedro.geo.raster_inspection import inspect_rasters

# A cell no scored window covers takes the most telling status among its windows.
_STATUS_PRIORITY = (UNREADABLE, PENDING, EMPTY)


def _covered_cells(windows: pd.DataFrame, k: int) -> pd.DataFrame:
    """One row per (window, covered cell): the window's position ``w`` and the cell's key."""
    n = len(windows)
    di, dj = (a.ravel() for a in np.meshgrid(np.arange(k), np.arange(k), indexing="ij"))
    return pd.DataFrame(
        {
            "w": np.repeat(np.arange(n), k * k),
            "crs": np.repeat(windows["crs"].to_numpy(dtype=object), k * k),
            "row": np.repeat(windows["row"].to_numpy(dtype=np.int64), k * k) + np.tile(di, n),
            "col": np.repeat(windows["col"].to_numpy(dtype=np.int64), k * k) + np.tile(dj, n),
        }
    )


def _cell_status(statuses: np.ndarray, cells: np.ndarray, n_cells: int) -> np.ndarray:
    out = np.full(n_cells, EMPTY, dtype=object)
    for status in reversed((SCORED, *_STATUS_PRIORITY)):
        out[np.unique(cells[statuses == status])] = status
    return out


def _mean_probabilities(
    probabilities: pd.Series,
    scored: np.ndarray,
    cells: np.ndarray,
    windows: np.ndarray,
    n_cells: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per cell: mean probability vector of its scored windows, and how many there were."""
    used = scored[windows]
    vectors = [np.asarray(v, dtype=np.float64) for v in probabilities.to_numpy()[scored]]
    n_classes = len(vectors[0]) if vectors else 0
    stacked = np.zeros((len(scored), n_classes))
    if vectors:
        stacked[np.flatnonzero(scored)] = np.vstack(vectors)
    sums = np.zeros((n_cells, n_classes))
    np.add.at(sums, cells[used], stacked[windows[used]])
    counts = np.bincount(cells[used], minlength=n_cells)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums / counts[:, None], counts


def _max_per_cell(values: np.ndarray, cells: np.ndarray, n_cells: int) -> np.ndarray:
    out = np.full(n_cells, np.nan)
    finite = np.isfinite(values)
    np.fmax.at(out, cells[finite], values[finite])
    return out


def _lon_lat(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    lons = np.zeros(len(table))
    lats = np.zeros(len(table))
    for crs, index in table.groupby("crs").indices.items():
        xs = ((table["minx"].to_numpy() + table["maxx"].to_numpy()) / 2)[index]
        ys = ((table["miny"].to_numpy() + table["maxy"].to_numpy()) / 2)[index]
        lon, lat = warp_transform(crs, "EPSG:4326", xs.tolist(), ys.tolist())
        lons[index], lats[index] = lon, lat
    return lons, lats


def footprints_by_crs(
    sources: Iterable[str], crs_list: Iterable[str]
) -> dict[str, shapely.Geometry]:
    """Union of the rasters' footprints in each CRS of ``crs_list`` (headers, plus a
    reduced-resolution mask read where a raster declares nodata)."""
    metas, _ = inspect_rasters(list(dict.fromkeys(sources)), min_bands=1)
    return {crs: shapely.union_all([footprint(meta, crs) for meta in metas]) for crs in crs_list}


def _inside_share(cells: pd.DataFrame, footprints: Mapping[str, shapely.Geometry]) -> np.ndarray:
    share = np.zeros(len(cells))
    for crs, index in cells.groupby("crs").indices.items():
        part = cells.iloc[index]
        boxes = shapely.box(part["minx"], part["miny"], part["maxx"], part["maxy"])
        share[index] = shapely.area(shapely.intersection(boxes, footprints[crs])) / shapely.area(
            boxes
        )
    return share


def cells_from_windows(
    windows: pd.DataFrame,
    grid: ChipGrid,
    class_names: Sequence[str] | None = None,
    *,
    footprints: Mapping[str, shapely.Geometry] | None = None,
    min_inside: float = 0.5,
) -> pd.DataFrame:
    """The cells covered by overlapping ``windows``, one row each, shaped like chip outcomes.

    ``windows`` holds ``crs, row, col, status`` and, for scored windows, ``probabilities``;
    optional ``cloud_fraction`` (a cell takes its cloudiest scored window's) and ``sources``
    (a cell lists every source of its windows). Returns ``chip_id`` (the cell id), ``crs,
    row, col, minx, miny, maxx, maxy, lon, lat, kind, status, n_windows`` and, where scored,
    ``probabilities`` (mean over its scored windows), ``class_index``, ``confidence``,
    ``predicted_label`` (with ``class_names``) and ``cloud_fraction``. With a non-overlapping
    ``grid`` the windows are already cells and come back unchanged.

    A window half outside the imagery covers cells wholly outside it; with ``footprints`` (the
    union of the rasters' footprints per CRS, :func:`footprints_by_crs`) cells with less than
    ``min_inside`` of their area inside are dropped, as chips are at planning.
    """
    if not grid.overlapping:
        return windows
    k = grid.windows_per_side
    pairs = _covered_cells(windows, k)
    key_columns = ["crs", "row", "col"]
    cell_index = pairs.groupby(key_columns, sort=True).ngroup().to_numpy()
    cells = pairs[key_columns].drop_duplicates().sort_values(key_columns).reset_index(drop=True)
    n_cells = len(cells)
    statuses = windows["status"].to_numpy(dtype=object)
    window_of_pair = pairs["w"].to_numpy()
    cells["status"] = _cell_status(statuses[window_of_pair], cell_index, n_cells)
    scored = statuses == SCORED
    probabilities = (
        windows["probabilities"] if "probabilities" in windows else pd.Series([None] * len(windows))
    )
    mean, counts = _mean_probabilities(probabilities, scored, cell_index, window_of_pair, n_cells)
    cells["n_windows"] = counts
    has = counts > 0
    cells["probabilities"] = [list(v) if h else None for v, h in zip(mean, has, strict=True)]
    top = np.zeros(n_cells, dtype=np.int64)
    confidence = np.full(n_cells, np.nan)
    if has.any():
        top[has] = mean[has].argmax(axis=1)
        confidence[has] = mean[has].max(axis=1)
    cells["class_index"] = pd.Series(top, dtype="Int64").where(has)
    cells["confidence"] = confidence
    if class_names is not None:
        names = np.asarray(class_names, dtype=object)
        labels = np.full(n_cells, None, dtype=object)
        if len(names):
            labels[has] = names[top[has]]
        cells["predicted_label"] = labels
    if "cloud_fraction" in windows:
        cloud = windows["cloud_fraction"].to_numpy(dtype=np.float64, na_value=np.nan)
        cloud = np.where(scored, cloud, np.nan)[window_of_pair]
        cells["cloud_fraction"] = _max_per_cell(cloud, cell_index, n_cells)
    if "sources" in windows:
        sources = windows["sources"].to_numpy(dtype=object)[window_of_pair]
        listed: list[dict[str, None]] = [{} for _ in range(n_cells)]
        for cell, paths in zip(cell_index, sources, strict=True):
            listed[cell].update(dict.fromkeys(paths))
        cells["sources"] = [tuple(paths) for paths in listed]
    size = grid.cell_size
    cells["minx"] = cells["col"] * size
    cells["maxx"] = (cells["col"] + 1) * size
    cells["maxy"] = -cells["row"] * size
    cells["miny"] = -(cells["row"] + 1) * size
    if footprints is not None:
        cells = cells[_inside_share(cells, footprints) >= min_inside - 1e-9].reset_index(drop=True)
    cells["lon"], cells["lat"] = _lon_lat(cells)
    keys_by_crs = {crs: crs_key(crs) for crs in cells["crs"].unique()}
    cells["chip_id"] = [
        f"{keys_by_crs[crs]}_{row}_{col}{grid.cell_suffix}"
        for crs, row, col in zip(cells["crs"], cells["row"], cells["col"], strict=True)
    ]
    cells["kind"] = "chip"
    return cells


def map_cells(
    windows: pd.DataFrame,
    grid: ChipGrid,
    class_names: Sequence[str],
    max_empty_fraction: float,
) -> pd.DataFrame:
    """The cells a map shows of planned, scored ``windows`` (with their ``sources``): windows
    averaged into cells, and cells mostly outside the rasters dropped by the rule chips are
    planned with (at most ``max_empty_fraction`` outside). Score maps and change both use it."""
    if not grid.overlapping:
        return windows
    footprints = footprints_by_crs(
        (path for sources in windows["sources"] for path in sources), windows["crs"].unique()
    )
    return cells_from_windows(
        windows, grid, class_names, footprints=footprints, min_inside=1.0 - max_empty_fraction
    )
