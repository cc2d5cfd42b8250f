"""Chip predictions as a GeoJSON FeatureCollection of lon/lat polygons (RFC 7946, EPSG:4326)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from rasterio.crs import CRS
from rasterio.warp import transform as warp_transform

_BOUNDS = ("minx", "miny", "maxx", "maxy")


def ring_points(bounds: Sequence[float], densify: int = 0) -> tuple[list[float], list[float]]:
    """Counter-clockwise closed ring of a box ``(minx, miny, maxx, maxy)``.

    ``densify`` extra points are inserted evenly along each edge, so the ring follows the
    curved edges once transformed to lon/lat. Returns ``(xs, ys)``.
    """
    minx, miny, maxx, maxy = bounds
    corners = [(minx, miny), (maxx, miny), (maxx, maxy), (minx, maxy)]
    xs: list[float] = []
    ys: list[float] = []
    steps = np.arange(densify + 1) / (densify + 1)
    for (x0, y0), (x1, y1) in zip(corners, corners[1:] + corners[:1], strict=True):
        xs.extend((x0 + (x1 - x0) * steps).tolist())
        ys.extend((y0 + (y1 - y0) * steps).tolist())
    xs.append(xs[0])
    ys.append(ys[0])
    return xs, ys


def _as_mapping(record: Any) -> Mapping[str, Any]:
    if isinstance(record, Mapping):
        return record
    if hasattr(record, "to_dict"):
        return record.to_dict()
    if hasattr(record, "asDict"):  # a pyspark Row
        return record.asDict()
    raise TypeError(f"cannot read chip bounds from {type(record).__name__}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _properties(
    rec: Mapping[str, Any], class_names: Sequence[str] | None, with_probabilities: bool
) -> dict[str, Any]:
    props: dict[str, Any] = {"chip_id": rec.get("chip_id")}
    for key in ("row", "col"):
        if key in rec:
            props[key] = _jsonable(rec[key])
    name = rec.get("class")
    index = rec.get("class_index")
    if name is None and index is not None and class_names is not None:
        name = class_names[int(index)]
    props["class"] = name
    if index is not None:
        props["class_index"] = int(index)
    if rec.get("confidence") is not None:
        props["confidence"] = round(float(rec["confidence"]), 6)
    probs = rec.get("probabilities")
    if with_probabilities and probs is not None:
        if isinstance(probs, Mapping):
            props["probabilities"] = {k: round(float(v), 6) for k, v in probs.items()}
        elif class_names is not None:
            props["probabilities"] = {
                n: round(float(p), 6) for n, p in zip(class_names, probs, strict=True)
            }
        else:
            props["probabilities"] = [round(float(p), 6) for p in probs]
    return props


def chips_to_geojson(
    records: Iterable[Any],
    crs: CRS | str | None = None,
    *,
    class_names: Sequence[str] | None = None,
    densify: int = 0,
    with_probabilities: bool = True,
    precision: int = 7,
) -> dict[str, Any]:
    """A FeatureCollection with one lon/lat polygon per chip.

    Each record (a mapping, a :class:`chip_planning.Chip` or a Spark ``Row``) needs ``minx``,
    ``miny``, ``maxx``, ``maxy`` in its ``crs`` (the record's ``"crs"`` key, else ``crs``).
    Properties: ``chip_id``, ``row``/``col`` when present, ``class`` (the record's ``class``
    or ``class_names[class_index]``), ``class_index``, ``confidence`` and, if present and
    wanted, ``probabilities`` (a dict by class name when ``class_names`` is given).
    """
    recs = [_as_mapping(r) for r in records]
    by_crs: dict[str, list[int]] = {}
    for n, rec in enumerate(recs):
        rec_crs = rec.get("crs") or crs
        if rec_crs is None:
            raise ValueError(f"no CRS for chip {rec.get('chip_id')!r}")
        by_crs.setdefault(CRS.from_user_input(rec_crs).to_string(), []).append(n)
    rings: list[list[list[float]]] = [[] for _ in recs]
    for src_crs, idx in by_crs.items():
        xs: list[float] = []
        ys: list[float] = []
        lengths = []
        for n in idx:
            rx, ry = ring_points([float(recs[n][k]) for k in _BOUNDS], densify)
            xs += rx
            ys += ry
            lengths.append(len(rx))
        lons, lats = warp_transform(src_crs, "EPSG:4326", xs, ys)
        start = 0
        for n, length in zip(idx, lengths, strict=True):
            rings[n] = [
                [round(lon, precision), round(lat, precision)]
                for lon, lat in zip(
                    lons[start : start + length], lats[start : start + length], strict=True
                )
            ]
            start += length
    features = [
        {
            "type": "Feature",
            "id": rec.get("chip_id"),
            "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": _properties(rec, class_names, with_probabilities),
        }
        for rec, ring in zip(recs, rings, strict=True)
    ]
    return {"type": "FeatureCollection", "features": features}


def write_geojson(
    path: str, feature_collection: Mapping[str, Any], indent: int | None = None
) -> str:
    """Write a FeatureCollection as UTF-8 JSON; returns ``path``."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(feature_collection, f, indent=indent, ensure_ascii=False)
    return path


def unlocated_feature_collection(
    records: Iterable[Any], class_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """A FeatureCollection of predictions without a place (``"geometry": null``, RFC 7946 3.2).

    For results that have no georeference, e.g. plain tiles: each record becomes a feature
    with the same properties :func:`chips_to_geojson` writes (no probabilities).
    """
    features = []
    for record in records:
        rec = _as_mapping(record)
        features.append(
            {
                "type": "Feature",
                "id": rec.get("chip_id"),
                "geometry": None,
                "properties": _properties(rec, class_names, with_probabilities=False),
            }
        )
    return {"type": "FeatureCollection", "features": features}
