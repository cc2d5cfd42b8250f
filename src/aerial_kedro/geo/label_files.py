"""Reading reference label files: untrusted vector data -> a checked GeoDataFrame of labels.

A user who wants to train on, or assess a map against, their own imagery draws reference
labels over it (a point or a polygon with a class) and hands over the file. This module's one
job is to read that file safely and return the labels in one shape, ``label_id``, ``label``,
``geometry`` with a CRS, or to refuse it in one line naming the culprit.

* :func:`read_reference_labels` reads GeoJSON (RFC 7946, lon/lat), GeoPackage, Shapefile or a
  CSV of lon/lat points, from a local path or any fsspec URL (``az://``, ``abfs://``,
  ``memory://`` ...), and checks what a user can get wrong (missing file, unknown format, no or
  unreadable CRS, a class field that does not exist, null / empty geometries, no features),
  each with one line naming the culprit; :class:`ReferenceLabelError` is that refusal.
* :func:`choose_layer` picks the layer of a multi-layer file (GeoPackage ...), refusing to
  guess between several.
* :func:`escape_text` escapes control and bidi characters of the file's text (ids, classes,
  layer names), so a label can neither cut nor forge a log line or a report cell.

Putting the labels on the chip grid is :mod:`.label_chips`.
Plain Python + geopandas/shapely: no Spark, no Kedro.
"""

from __future__ import annotations

import json
import posixpath
import tempfile
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import fsspec
import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

VECTOR_EXTENSIONS = (".geojson", ".json", ".gpkg", ".shp", ".zip", ".fgb", ".kml", ".gml")
CSV_EXTENSIONS = (".csv", ".txt", ".tsv")
# (x column, y column) pairs accepted in a CSV, compared case-insensitively; all in EPSG:4326.
CSV_COORDINATES = (("lon", "lat"), ("longitude", "latitude"), ("lng", "lat"), ("x", "y"))
# Files that travel with a Shapefile's .shp.
_SHAPEFILE_SIDECARS = (".shx", ".dbf", ".prj", ".cpg")
# Unicode categories escaped in label text: control (NUL, ESC, CR ...), format (U+202E and the
# other bidi controls, zero-width joiners), line and paragraph separators, unassigned, surrogates.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cn", "Cs"})


class ReferenceLabelError(ValueError):
    """Reference labels that cannot be used; the message names the file and the problem."""


def read_reference_labels(
    path: str,
    class_field: str = "class",
    storage_options: Mapping[str, Any] | None = None,
    layer: str | None = None,
) -> gpd.GeoDataFrame:
    """Read reference labels: a GeoDataFrame of ``label_id``, ``label`` (str), ``geometry``.

    ``label_id`` is the feature's ``id`` property when every feature has a distinct one, else
    its position in the file (0, 1, ...): stable, so a rejected label can be found again.
    The CRS is always set (GeoJSON without a ``crs`` member is lon/lat per RFC 7946; CSV
    coordinates are lon/lat). Raises :class:`ReferenceLabelError` with one line naming the
    culprit for anything a user can get wrong. ``layer`` names the layer of a multi-layer file
    (GeoPackage ...); a file of several layers read without one is refused, listing them.
    """
    table = read_label_table(path, storage_options, layer)
    return normalise_labels(table, str(path), class_field)


def read_label_table(
    path: str, storage_options: Mapping[str, Any] | None = None, layer: str | None = None
) -> pd.DataFrame:
    """The file's features as read, every property kept, checked only as far as reading goes
    (format, layer, CRS): :func:`read_reference_labels` is this, then :func:`normalise_labels`.
    For callers that need more of the file than the class (a sample design's chip ids)."""
    name = str(path)
    local = _local_copy(name, storage_options)
    try:
        return _read_any(name, local.name if isinstance(local, _TempCopy) else local, layer)
    finally:
        if isinstance(local, _TempCopy):
            local.cleanup()


class _TempCopy:
    """A remote file (and its Shapefile side-cars) downloaded into a temporary folder."""

    def __init__(self, folder: tempfile.TemporaryDirectory, name: str) -> None:
        self._folder = folder
        self.name = name

    def cleanup(self) -> None:
        self._folder.cleanup()


def _local_copy(name: str, storage_options: Mapping[str, Any] | None) -> str | _TempCopy:
    """The local path to read: the path itself, or a temporary copy of an fsspec URL."""
    if "://" not in name or name.startswith("file://"):
        local = name[len("file://") :] if name.startswith("file://") else name
        if not Path(local).is_file():
            what = "is a folder, not a file" if Path(local).is_dir() else "does not exist"
            raise ReferenceLabelError(f"reference labels '{name}' {what}")
        return local
    try:
        fs, remote = fsspec.core.url_to_fs(name, **dict(storage_options or {}))
        exists = fs.isfile(remote)
    except Exception as exc:  # unknown protocol, unreachable store, bad credentials
        raise ReferenceLabelError(
            f"reference labels '{name}' cannot be opened ({type(exc).__name__}: {exc})"
        ) from exc
    if not exists:
        raise ReferenceLabelError(f"reference labels '{name}' does not exist")
    folder = tempfile.TemporaryDirectory(prefix="reference_labels_")
    base = posixpath.basename(remote)
    target = Path(folder.name) / base
    fs.get_file(remote, str(target))
    stem, extension = posixpath.splitext(remote)
    if extension.lower() == ".shp":
        for sidecar in _SHAPEFILE_SIDECARS:
            for candidate in (stem + sidecar, stem + sidecar.upper()):
                if fs.isfile(candidate):
                    fs.get_file(candidate, str(Path(folder.name) / posixpath.basename(candidate)))
    return _TempCopy(folder, str(target))


def choose_layer(name: str, layers: Sequence[str], layer: str | None) -> str | None:
    """The layer to read of a file holding ``layers``: ``layer`` when it is one of them, the
    only one, else one line naming the file and listing them."""
    listed = ", ".join(escape_text(str(n)) for n in layers) or "(none)"
    if layer is not None:
        if layer not in layers:
            raise ReferenceLabelError(
                f"reference labels '{name}' has no layer '{escape_text(layer)}'; layers: {listed}"
            )
        return layer
    if len(layers) > 1:
        raise ReferenceLabelError(
            f"reference labels '{name}' has {len(layers)} layers ({listed}); name one with "
            "reference_layer"
        )
    return None


def _layers(local: str) -> list[str]:
    """The layer names of a vector file (none when GDAL cannot list them: reading reports it)."""
    try:
        return [str(n) for n in pyogrio.list_layers(local)[:, 0]]
    except Exception:  # pyogrio raises DataSourceError & co. for unreadable files
        return []


def _read_any(name: str, local: str, layer: str | None = None) -> pd.DataFrame:
    extension = posixpath.splitext(local)[1].lower()
    if extension in CSV_EXTENSIONS:
        return _read_csv(name, local)
    if extension in (".geojson", ".json"):
        _check_geojson_crs(name, local)
    chosen = choose_layer(name, _layers(local), layer)
    try:
        frame = gpd.read_file(local, layer=chosen)
    except Exception as exc:  # pyogrio raises DataSourceError & co. for unreadable files
        message = str(exc).split(";")[0].replace(local, Path(local).name)
        raise ReferenceLabelError(
            f"reference labels '{name}' cannot be read as GeoJSON, GeoPackage, Shapefile or "
            f"CSV ({message})"
        ) from exc
    if frame.crs is None and len(frame):
        prj = Path(local).with_suffix(".prj")
        if extension == ".shp" and (prj.exists() or prj.with_suffix(".PRJ").exists()):
            raise ReferenceLabelError(
                f"reference labels '{name}': the CRS in {prj.name} cannot be read"
            )
        raise ReferenceLabelError(
            f"reference labels '{name}' has no CRS; save it with one (GeoJSON is lon/lat by "
            "definition, a Shapefile needs its .prj)"
        )
    return frame


def _check_geojson_crs(name: str, local: str) -> None:
    """GDAL falls back to lon/lat for a GeoJSON ``crs`` member it cannot read: refuse instead."""
    try:
        with open(local, "rb") as stream:
            document = json.load(stream)
    except (ValueError, UnicodeDecodeError):
        return  # not JSON: the reader reports it
    member = document.get("crs") if isinstance(document, dict) else None
    if not member:
        return
    properties = member.get("properties", {}) if isinstance(member, dict) else {}
    value = properties.get("name") or properties.get("href") or member
    try:
        CRS.from_user_input(value)
    except (CRSError, TypeError, ValueError):
        raise ReferenceLabelError(
            f"reference labels '{name}': its CRS {value!r} cannot be read"
        ) from None


def _read_csv(name: str, local: str) -> gpd.GeoDataFrame:
    try:
        table = pd.read_csv(local, sep=None, engine="python")
    except Exception as exc:
        raise ReferenceLabelError(
            f"reference labels '{name}' cannot be read as CSV ({type(exc).__name__}: {exc})"
        ) from exc
    columns = {str(column).strip().lower(): column for column in table.columns}
    for x_name, y_name in CSV_COORDINATES:
        if x_name in columns and y_name in columns:
            x_col, y_col = columns[x_name], columns[y_name]
            break
    else:
        raise ReferenceLabelError(
            f"reference labels '{name}': a CSV needs lon/lat (or longitude/latitude, x/y) "
            f"columns in EPSG:4326; it has {', '.join(map(str, table.columns))}"
        )
    xs = pd.to_numeric(table[x_col], errors="coerce")
    ys = pd.to_numeric(table[y_col], errors="coerce")
    bad = table.index[xs.isna() | ys.isna()]
    if len(bad):
        raise ReferenceLabelError(
            f"reference labels '{name}': row(s) {_first(bad)} have no numeric {x_col}/{y_col}"
        )
    if ((xs.abs() > 180) | (ys.abs() > 90)).any():
        raise ReferenceLabelError(
            f"reference labels '{name}': {x_col}/{y_col} are not lon/lat degrees (EPSG:4326)"
        )
    attributes = table.drop(columns=[x_col, y_col])
    return gpd.GeoDataFrame(attributes, geometry=gpd.points_from_xy(xs, ys), crs="EPSG:4326")


def _first(values: Iterable[Any], limit: int = 5) -> str:
    values = list(values)
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f" ... ({len(values)} in all)" if len(values) > limit else "")


def normalise_labels(frame: pd.DataFrame, name: str, class_field: str) -> gpd.GeoDataFrame:
    """A table read by :func:`read_label_table` as checked labels (see :func:`read_reference_labels`)."""
    if len(frame) == 0:
        raise ReferenceLabelError(f"reference labels '{name}' has no features")
    fields = [str(c) for c in frame.columns if c != frame.geometry.name]
    if class_field not in frame.columns:
        raise ReferenceLabelError(
            f"reference labels '{name}': class field '{class_field}' does not exist; fields: "
            f"{', '.join(fields) or '(none)'}"
        )
    label_ids = _label_ids(frame)
    missing = label_ids[frame[class_field].isna().to_numpy()]
    if len(missing):
        raise ReferenceLabelError(
            f"reference labels '{name}': feature(s) {_first(missing)} have no '{class_field}'"
        )
    geometry = frame.geometry
    empty = label_ids[(geometry.isna() | geometry.is_empty).to_numpy()]
    if len(empty):
        raise ReferenceLabelError(
            f"reference labels '{name}': feature(s) {_first(empty)} have a null or empty geometry"
        )
    kinds = geometry.geom_type
    unsupported = ~kinds.isin(["Point", "MultiPoint", "Polygon", "MultiPolygon"])
    if unsupported.any():
        position = int(np.flatnonzero(unsupported.to_numpy())[0])
        raise ReferenceLabelError(
            f"reference labels '{name}': feature {label_ids[position]} is a {kinds.iloc[position]}; "
            "points or polygons are needed"
        )
    geometries = geometry.to_numpy()
    finite = _finite(geometries)
    # Self-touching hand-drawn rings; NaN / infinite coordinates are left for chips_for_labels
    # to reject (GEOS cannot repair them).
    geometries[finite] = shapely.make_valid(geometries[finite])
    labels = frame[class_field].map(class_name)
    return gpd.GeoDataFrame(
        {"label_id": label_ids, "label": labels.to_numpy()},
        geometry=gpd.GeoSeries(geometries, crs=frame.crs),
        crs=frame.crs,
    )


def _finite(geometries: np.ndarray) -> np.ndarray:
    """Which geometries have only finite coordinates."""
    coordinates, owner = shapely.get_coordinates(geometries, return_index=True)
    finite = np.ones(len(geometries), dtype=bool)
    finite[owner[~np.isfinite(coordinates).all(axis=1)]] = False
    return finite


def _label_ids(frame: pd.DataFrame) -> np.ndarray:
    """The ``id`` property when every feature has a distinct one, else positions 0..n-1."""
    if "id" in frame.columns:
        ids = frame["id"]
        if ids.notna().all() and ids.is_unique:
            numeric = pd.to_numeric(ids, errors="coerce")
            if numeric.notna().all() and (numeric == numeric.round()).all():
                return numeric.astype("int64").to_numpy()
            return ids.map(lambda v: escape_text(str(v))).to_numpy()
    return np.arange(len(frame), dtype="int64")


def class_name(value: Any) -> str:
    """Class values as text; ``3.0`` read from a numeric column becomes ``"3"``; control and
    bidi characters escaped (:func:`escape_text`)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return escape_text(str(value).strip())


def escape_text(text: str) -> str:
    """``text`` with every control, format (bidi overrides, zero-width ...) and line/paragraph
    separator character written as a ``\\uXXXX`` escape, so a label can neither cut, reorder
    nor forge a log line or a report cell. Other text is unchanged."""
    return "".join(
        f"\\u{ord(ch):04x}" if unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch for ch in text
    )
