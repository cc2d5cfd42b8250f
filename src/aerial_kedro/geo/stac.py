"""A STAC Item describing one scoring run's map products (class COG, GeoParquet, GeoJSON, PNG, report).

Why: STAC is how this field finds and opens map products - QGIS's STAC browser, stac-browser,
pystac-client and Planetary Computer-style catalogues read an Item to learn what a map is, where it
lies and which files hold it, without opening any of them. rio-stac reads the footprint, the
EPSG:4326 bbox and the projection fields from the class COG itself, so the Item always describes
the raster it names; the classification extension carries the class codes, names and colours that
the COG keeps in its tags; the other products are listed as assets by media type and role.

Pure: no Kedro, no Spark. It reads the COG's header and tags and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

import pystac
import rasterio
from pystac.extensions.classification import Classification, ClassificationExtension
from rio_stac import create_stac_item

#: Asset key of the class raster; its href defaults to ``class_raster_path``.
CLASSES_ASSET = "classes"
NODATA_CLASS = 255
# Footprint: extra vertices per edge (a UTM rectangle is not one in lon/lat), 6 decimals (~0.1 m).
FOOTPRINT_DENSIFY_POINTS = 5
FOOTPRINT_DECIMALS = 6
# The media types the STAC best practices name for these formats, and the asset roles.
_ASSET_KINDS: dict[str, tuple[str, list[str]]] = {
    ".tif": (pystac.MediaType.COG, ["data"]),
    ".tiff": (pystac.MediaType.COG, ["data"]),
    ".geoparquet": ("application/vnd.apache.parquet", ["data"]),
    ".parquet": ("application/vnd.apache.parquet", ["data"]),
    ".geojson": (pystac.MediaType.GEOJSON, ["data"]),
    ".png": (pystac.MediaType.PNG, ["overview", "visual"]),
    ".json": (pystac.MediaType.JSON, ["metadata"]),
}
_CLASS_NAME = re.compile(r"[^0-9A-Za-z_-]+")


def asset_kind(href: str) -> tuple[str, list[str]]:
    """Media type and roles of a map product, from its file suffix."""
    suffix = PurePosixPath(href.split("?", 1)[0].rstrip("/")).suffix.lower()
    if suffix not in _ASSET_KINDS:
        raise ValueError(f"asset '{href}': unknown file type (one of {', '.join(sorted(_ASSET_KINDS))})")
    return _ASSET_KINDS[suffix]


def item_datetime(properties: Mapping[str, Any]) -> dt.datetime:
    """The Item's ``datetime`` property (STAC requires one): a timezone-aware ``datetime`` or ISO 8601."""
    if "datetime" not in properties:
        raise ValueError("properties: 'datetime' is missing (the scene's date or the run's time, ISO 8601)")
    value = properties["datetime"]
    try:
        moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"properties: 'datetime' = '{value}' is not an ISO 8601 date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def raster_classes(class_raster_path: str) -> list[Classification]:
    """Classification-extension classes from a class COG's tags (``class_names``, ``class_colors``)."""
    with rasterio.open(class_raster_path) as src:
        tags = src.tags()
    if "class_names" not in tags:
        raise ValueError(f"'{class_raster_path}' has no class_names tag: not a class raster of this project")
    names = json.loads(tags["class_names"])
    colors = json.loads(tags.get("class_colors", "[]"))
    classes = []
    for value, title in enumerate(names):
        color = colors[value].lstrip("#").upper() if value < len(colors) else None
        classes.append(Classification.create(
            value=value, name=_CLASS_NAME.sub("_", title).strip("_") or f"class_{value}",
            title=title, color_hint=color,
        ))
    classes.append(Classification.create(value=NODATA_CLASS, name="nodata", title="not classified",
                                         nodata=True))
    return classes


def map_stac_item(
    run_id: str, class_raster_path: str, assets: Mapping[str, str], properties: Mapping[str, Any]
) -> dict[str, Any]:
    """The STAC Item (a GeoJSON Feature, as a dict) of one scoring run's map products.

    ``class_raster_path`` is the class COG to read (a local path or a GDAL path such as /vsiaz/);
    ``assets`` maps asset keys to the hrefs written in the Item (relative hrefs are relative to
    where the Item is stored), e.g. ``{"classes": "land_use_classes.tif", "chips":
    "land_use_chips.geoparquet", "chips_geojson": ..., "map": "land_use_map.png", "report":
    "class_shares.json"}``; without a ``classes`` key the COG's own path is its href.
    ``properties`` must hold ``datetime``; the rest (model, featurizer, source ...) is copied.
    """
    hrefs = dict(assets)
    classes_href = hrefs.pop(CLASSES_ASSET, class_raster_path)
    media_type, roles = asset_kind(classes_href)
    extra = {key: value for key, value in properties.items() if key != "datetime"}
    item = create_stac_item(
        class_raster_path,
        input_datetime=item_datetime(properties),
        id=run_id,
        properties=extra,
        asset_name=CLASSES_ASSET,
        asset_href=classes_href,
        asset_roles=roles,
        asset_media_type=media_type,
        with_proj=True,
        geom_densify_pts=FOOTPRINT_DENSIFY_POINTS,
        geom_precision=FOOTPRINT_DECIMALS,
    )
    classification = ClassificationExtension.ext(item.assets[CLASSES_ASSET], add_if_missing=True)
    classification.classes = raster_classes(class_raster_path)
    for key, href in hrefs.items():
        media_type, roles = asset_kind(href)
        item.add_asset(key, pystac.Asset(href=href, media_type=media_type, roles=roles))
    return item.to_dict(include_self_link=False)
