"""Issue 24 item 5: a multi-layer GeoPackage of labels is never read by its first layer silently.

``reference_layer`` names the layer; a file of several layers read without one is one line
listing them. Real GeoPackages written by pyogrio, read by the assess node and ReferenceSettings.
"""

from __future__ import annotations

import geopandas as gpd
import pytest
from conftest import SHARED_DATA
from shapely.geometry import Point

from aerial_kedro.geo.label_files import ReferenceLabelError, read_reference_labels
from aerial_kedro.pipelines.assess.nodes import prepare_reference
from aerial_kedro.pipelines.reference.settings import ReferenceSettings

LABELS = SHARED_DATA / "labels" / "czech_west_labels.geojson"
ASSESS = {"class_scheme": "auto", "exclude_training_chips": True}

pytestmark = pytest.mark.skipif(not LABELS.exists(), reason=f"{LABELS} missing")


@pytest.fixture
def two_layers(tmp_path):
    """``aaa_other`` (one point, written first) and ``labels`` (the 218 Czech squares)."""
    path = tmp_path / "labels.gpkg"
    other = gpd.GeoDataFrame({"class": ["water"]}, geometry=[Point(14.0, 50.0)], crs=4326)
    other.to_file(path, layer="aaa_other")
    gpd.read_file(LABELS).to_file(path, layer="labels")
    return path


def test_several_layers_and_none_named_is_one_line_listing_them(two_layers):
    """Before: the first layer (one point) was read: '0 labelled chip(s) ... 1 outside'."""
    with pytest.raises(ReferenceLabelError) as error:
        prepare_reference(str(two_layers), "class", 0.5, ASSESS)
    message = str(error.value)
    assert "\n" not in message and str(two_layers) in message
    assert "2 layers (aaa_other, labels)" in message and "reference_layer" in message


def test_reference_layer_names_the_layer(two_layers):
    settings, labels = prepare_reference(str(two_layers), "class", 0.5, ASSESS, "labels")
    assert settings.layer == "labels" and len(labels) == 218
    with pytest.raises(
        ReferenceLabelError, match=r"has no layer 'lables'; layers: aaa_other, labels"
    ):
        read_reference_labels(str(two_layers), layer="lables")
    train = ReferenceSettings.from_params(str(two_layers), "scene.tif", "class", 0.5, {}, "labels")
    assert train.layer == "labels"
