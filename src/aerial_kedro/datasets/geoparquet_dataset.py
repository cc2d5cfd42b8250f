"""Chip bounds from a Spark DataFrame as GeoParquet, written by the Spark tasks themselves.

Each task turns its rows' ``crs, minx, miny, maxx, maxy`` into WKB polygons and streams them,
with every other column, into one Parquet part file per CRS it meets, carrying the ``geo``
metadata of GeoParquet 1.1 (PROJJSON CRS, WKB encoding, a ``bbox`` covering column). Nothing but
a one-row summary per file reaches the driver, so a county's chips cost the driver what a
scene's do. GeoPandas, QGIS/GDAL, DuckDB spatial and Sedona read the folder as it is::

    predictions.geoparquet/
        EPSG_32633/part-00000.parquet     one CRS per folder (UTM zones of a mosaic stay apart)
        EPSG_32633/part-00001.parquet
        EPSG_32634/part-00003.parquet

Rows without a CRS or bounds (plain tiles, which have no place on a map) get a null geometry
in a ``no_crs`` folder whose metadata says the CRS is undefined.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import shapely
from kedro.io.core import DatasetError
from kedro_datasets._typing import TablePreview
from pyproj import CRS
from pyspark.sql import DataFrame

from aerial_kedro.datasets.fsspec_file import FsspecFileDataset

if TYPE_CHECKING:  # geopandas is imported on load only: saving (on the workers) does not need it
    import geopandas as gpd

logger = logging.getLogger(__name__)

GEOPARQUET_VERSION = "1.1.0"
BOUNDS = ("minx", "miny", "maxx", "maxy")
GEOMETRY = "geometry"
COVERING = "bbox"
NO_CRS = "no_crs"
SUMMARY_SCHEMA = "file string, crs string, rows long"
_SLUG = re.compile(r"[^A-Za-z0-9]+")


def crs_folder(crs: str | None) -> str:
    """Folder name of a CRS: ``EPSG:32633`` -> ``EPSG_32633`` (safe on every filesystem)."""
    if crs is None:
        return NO_CRS
    authority = CRS.from_user_input(crs).to_authority()
    # Not hash(): it differs between the Python workers of one job.
    label = (
        ":".join(authority) if authority else f"crs_{hashlib.sha1(crs.encode()).hexdigest()[:12]}"
    )
    return _SLUG.sub("_", label).strip("_")


@lru_cache(maxsize=64)
def geo_metadata(crs: str | None, geometry: str = GEOMETRY, covering: bool = True) -> bytes:
    """The ``geo`` key of a GeoParquet 1.1 file holding WKB polygons in ``crs``.

    ``crs=None`` is written as JSON null, which the spec defines as "undefined" (leaving the key
    out would mean lon/lat, which plain tiles are not).
    """
    column: dict[str, Any] = {
        "encoding": "WKB",
        "geometry_types": ["Polygon"],
        "crs": CRS.from_user_input(crs).to_json_dict() if crs is not None else None,
        "orientation": "counterclockwise",
        "edges": "planar",
    }
    if covering:
        column["covering"] = {
            "bbox": {key: [COVERING, key] for key in ("xmin", "ymin", "xmax", "ymax")}
        }
    meta = {
        "version": GEOPARQUET_VERSION,
        "primary_column": geometry,
        "columns": {geometry: column},
    }
    return json.dumps(meta).encode()


def with_geometry(table: pa.Table, geometry: str = GEOMETRY, covering: bool = True) -> pa.Table:
    """``table`` plus a WKB polygon per row from its bounds (null where a bound is null).

    With ``covering``, also the GeoParquet 1.1 ``bbox`` struct column readers use to skip row
    groups outside a query window.
    """
    bounds = [table[name].to_numpy(zero_copy_only=False).astype("float64") for name in BOUNDS]
    valid = ~np.any([np.isnan(values) for values in bounds], axis=0)
    polygons = np.full(len(table), None, dtype=object)
    polygons[valid] = shapely.box(*(values[valid] for values in bounds))
    wkb = pa.array(shapely.to_wkb(polygons), type=pa.binary())
    table = table.append_column(geometry, wkb)
    if not covering:
        return table
    mask = pa.array(~valid)
    fields = [pa.array(values, mask=~valid, type=pa.float64()) for values in bounds]
    box = pa.StructArray.from_arrays(fields, names=["xmin", "ymin", "xmax", "ymax"], mask=mask)
    return table.append_column(COVERING, box)


def write_partition_geoparquet(
    batches: Iterable[pa.RecordBatch],
    *,
    root: str,
    partition: int,
    open_fs: Callable[[], fsspec.AbstractFileSystem],
    crs_column: str = "crs",
    geometry: str = GEOMETRY,
    covering: bool = True,
) -> Iterator[pa.RecordBatch]:
    """Stream one Spark partition's rows into ``root/<crs folder>/part-<partition>.parquet``.

    Batch by batch (memory stays one Arrow batch), one open writer per CRS met. A retried task
    rewrites the same file names, so a retry never leaves duplicates. Yields one summary row
    (file, crs, rows) per file written.
    """
    fs = None
    writers: dict[str | None, tuple[str, Any, pq.ParquetWriter]] = {}
    rows: dict[str | None, int] = {}
    try:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            table = pa.Table.from_batches([batch])
            crs_values = table[crs_column]
            for crs in pc.unique(crs_values).to_pylist():
                mask = pc.is_null(crs_values) if crs is None else pc.equal(crs_values, crs)
                part = with_geometry(table.filter(pc.fill_null(mask, False)), geometry, covering)
                if crs not in writers:
                    fs = fs or open_fs()
                    folder = f"{root}/{crs_folder(crs)}"
                    fs.makedirs(folder, exist_ok=True)
                    path = f"{folder}/part-{partition:05d}.parquet"
                    schema = part.schema.with_metadata(
                        {b"geo": geo_metadata(crs, geometry, covering)}
                    )
                    handle = fs.open(path, "wb")
                    writers[crs] = (path, handle, pq.ParquetWriter(handle, schema))
                    rows[crs] = 0
                writers[crs][2].write_table(part)
                rows[crs] += part.num_rows
    finally:
        for _path, handle, writer in writers.values():
            writer.close()
            handle.close()
    if writers:
        yield pa.RecordBatch.from_pydict(
            {
                "file": [path for path, _h, _w in writers.values()],
                "crs": list(writers),
                "rows": [rows[crs] for crs in writers],
            },
            schema=pa.schema([("file", pa.string()), ("crs", pa.string()), ("rows", pa.int64())]),
        )


def _task_writer(
    root: str,
    protocol: str,
    storage_options: dict[str, Any],
    crs_column: str,
    geometry: str,
    covering: bool,
) -> Callable[[Iterable[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The function ``mapInArrow`` ships to every task (only picklable values in its closure)."""

    def write(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from pyspark import TaskContext

        context = TaskContext.get()
        if context is None:
            raise RuntimeError("the GeoParquet writer runs only inside a Spark task")
        return write_partition_geoparquet(
            batches,
            root=root,
            partition=context.partitionId(),
            open_fs=lambda: fsspec.filesystem(protocol, **storage_options),
            crs_column=crs_column,
            geometry=geometry,
            covering=covering,
        )

    return write


class GeoParquetDataset(FsspecFileDataset[DataFrame, "gpd.GeoDataFrame"]):
    """Saves a Spark DataFrame of chip bounds as a GeoParquet folder; loads a GeoDataFrame.

    ``save`` takes a Spark DataFrame with ``crs`` (any string pyproj reads, e.g. ``EPSG:32633``)
    and ``minx, miny, maxx, maxy`` in that CRS, plus any other columns (kept). The Spark tasks
    write the files (see the module docstring); an earlier folder at ``filepath`` is replaced.
    ``load`` returns one GeoDataFrame in the folder's CRS; a folder holding several CRSs needs
    ``load_args: {crs: EPSG:...}`` to bring them into one.

    Example catalog entry::

        scoring.chips_geoparquet:
          type: aerial_kedro.datasets.GeoParquetDataset
          filepath: data/08_reporting/scoring/land_use_chips.geoparquet
          # credentials: azurite_blob          (abfs:// paths)
          # load_args: {crs: EPSG:4326}        (reproject several UTM zones into one CRS)
    """

    def __init__(
        self,
        *,
        filepath: str,
        crs_column: str = "crs",
        geometry: str = GEOMETRY,
        covering: bool = True,
        load_args: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            filepath=filepath, credentials=credentials, fs_args=fs_args, metadata=metadata
        )
        self._storage_options = {**(credentials or {}), **(fs_args or {})}
        self._crs_column = crs_column
        self._geometry = geometry
        self._covering = covering
        self._load_args = dict(load_args or {})

    def save(self, data: DataFrame) -> None:
        if not isinstance(data, DataFrame):
            raise DatasetError(f"Expected a Spark DataFrame, got {type(data).__name__}")
        required = (self._crs_column, *BOUNDS)
        missing = [name for name in required if name not in data.columns]
        if missing:
            raise DatasetError(
                f"GeoParquet needs columns {', '.join(missing)} (have {data.columns})"
            )
        written = (self._geometry, COVERING) if self._covering else (self._geometry,)
        taken = [name for name in written if name in data.columns]
        if taken:
            raise DatasetError(
                f"Column {taken[0]!r} is written by the GeoParquet dataset: rename it"
            )
        root = self._full_path()
        if self._fs.exists(root):
            self._fs.rm(root, recursive=True)
        self._fs.makedirs(root, exist_ok=True)
        writer = _task_writer(
            root,
            self._protocol,
            self._storage_options,
            self._crs_column,
            self._geometry,
            self._covering,
        )
        summary = data.mapInArrow(writer, SUMMARY_SCHEMA).collect()
        per_crs: dict[str | None, int] = {}
        for row in summary:
            per_crs[row["crs"]] = per_crs.get(row["crs"], 0) + row["rows"]
        logger.info(
            "GeoParquet %s: %d rows in %d files (%s)",
            root,
            sum(per_crs.values()),
            len(summary),
            ", ".join(f"{crs}: {count}" for crs, count in per_crs.items()) or "no rows",
        )

    def load(self) -> gpd.GeoDataFrame:
        import geopandas as gpd
        import pandas as pd

        root = self._existing_path(" (run the pipeline that writes it first)")
        folders = self._crs_folders(root)
        target = self._load_args.get("crs")
        if not folders:
            return gpd.GeoDataFrame({self._geometry: []}, geometry=self._geometry, crs=target)
        frames = [self._read_folder(folder) for folder in folders]
        crss = sorted({frame.crs.to_string() for frame in frames if frame.crs is not None})
        if target is None and len(crss) > 1:
            raise ValueError(
                f"{root} holds chips in {len(crss)} CRSs ({', '.join(crss)}): "
                "set load_args: {crs: ...} to reproject them into one"
            )
        crs = target or (crss[0] if crss else None)
        # Frames without a CRS hold only null geometries (rows without bounds): nothing to move.
        frames = [
            frame.to_crs(crs) if frame.crs is not None else frame.set_crs(crs) for frame in frames
        ]
        combined = pd.concat(frames, ignore_index=True)
        return gpd.GeoDataFrame(combined, geometry=self._geometry, crs=crs)

    def preview(self, nrows: int = 5) -> TablePreview:
        """The first ``nrows`` chips of the first CRS folder, geometry as WKT (for kedro-viz)."""
        root = self._existing_path(" (run the pipeline that writes it first)")
        folders = self._crs_folders(root)
        if not folders:
            return TablePreview({"index": [], "columns": [], "data": []})
        frame = self._read_folder(folders[0]).head(nrows)
        frame[self._geometry] = frame.geometry.to_wkt()
        return TablePreview(frame.to_dict(orient="split"))

    def _crs_folders(self, root: str) -> list[str]:
        files = [path for path in self._fs.find(root) if path.endswith(".parquet")]
        return sorted({str(PurePosixPath(path).parent) for path in files})

    def _read_folder(self, folder: str) -> gpd.GeoDataFrame:
        import geopandas as gpd

        frame = gpd.read_parquet(folder, filesystem=self._fs)
        return frame.drop(columns=[COVERING], errors="ignore")

    def _describe(self) -> dict[str, Any]:
        return {**super()._describe(), "crs_column": self._crs_column, "load_args": self._load_args}
