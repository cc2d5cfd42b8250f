"""Reading reference label files: the real Czech labels over fsspec, a CSV of lon/lat points,
and one-line errors for what a user can get wrong."""

from __future__ import annotations

import json

import fsspec
import geopandas as gpd
import pandas as pd
import pytest
from geo.label_fixtures import COL, CZECH_LABELS, GRID, ROW, UTM, centre, chip_box, write

from aerial_kedro.geo.grid import chip_id
from aerial_kedro.geo.label_chips import chips_for_labels
from aerial_kedro.geo.label_files import ReferenceLabelError, read_reference_labels

# --------------------------------------------------------------------------- the real labels


@pytest.mark.skipif(not CZECH_LABELS.exists(), reason=f"{CZECH_LABELS} missing")
def test_fsspec_url_reads_the_same_labels():
    with fsspec.open("memory://refs/czech.geojson", "wb") as stream:
        stream.write(CZECH_LABELS.read_bytes())
    labels = read_reference_labels("memory://refs/czech.geojson")
    assert len(labels) == 218 and labels.crs.to_epsg() == 4326
    with pytest.raises(ReferenceLabelError, match="'memory://refs/nothing.geojson' does not exist"):
        read_reference_labels("memory://refs/nothing.geojson")


# --------------------------------------------------------------------------- hand-made cases


def test_csv_of_lon_lat_points(tmp_path):
    lonlat = gpd.GeoSeries([centre(ROW, COL), centre(ROW, COL + 2)], crs=UTM).to_crs(4326)
    table = pd.DataFrame({"Longitude": lonlat.x, "Latitude": lonlat.y, "class": ["water", "built"]})
    path = tmp_path / "points.csv"
    table.to_csv(path, index=False)
    labels = read_reference_labels(str(path))
    assert labels.crs.to_epsg() == 4326
    chips, _ = chips_for_labels(labels, UTM, GRID)
    assert chips["chip_id"].tolist() == [chip_id(UTM, ROW, COL), chip_id(UTM, ROW, COL + 2)]

    (tmp_path / "xy.csv").write_text("x;y;class\n15.7;50.3;forest\n")
    assert read_reference_labels(str(tmp_path / "xy.csv"))["label"].tolist() == ["forest"]


# --------------------------------------------------------------------------- one-line errors


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_missing_file_and_unreadable_format(tmp_path):
    with pytest.raises(ReferenceLabelError) as error:
        read_reference_labels(str(tmp_path / "nope.geojson"))
    assert _one_line(error) == f"reference labels '{tmp_path / 'nope.geojson'}' does not exist"

    junk = tmp_path / "labels.gpkg"
    junk.write_text("this is not a geopackage")
    with pytest.raises(ReferenceLabelError) as error:
        read_reference_labels(str(junk))
    assert "cannot be read as GeoJSON, GeoPackage, Shapefile or CSV" in _one_line(error)
    assert str(junk) in str(error.value)


def test_missing_or_unreadable_crs(tmp_path):
    frame = gpd.GeoDataFrame({"class": ["forest"]}, geometry=[chip_box(ROW, COL)])  # no CRS
    with pytest.warns(UserWarning):
        write(frame, tmp_path / "nocrs.gpkg")
    with pytest.raises(ReferenceLabelError) as error:
        read_reference_labels(str(tmp_path / "nocrs.gpkg"))
    assert "has no CRS" in _one_line(error)

    write(frame.set_crs(UTM), tmp_path / "bad.shp")
    (tmp_path / "bad.prj").write_text("not a coordinate system")
    with pytest.raises(ReferenceLabelError) as error:
        read_reference_labels(str(tmp_path / "bad.shp"))
    assert "the CRS in bad.prj cannot be read" in _one_line(error)

    document = {
        "type": "FeatureCollection",
        "crs": {"type": "name", "properties": {"name": "EPSG:999999"}},
        "features": [
            {
                "type": "Feature",
                "properties": {"class": "forest"},
                "geometry": {"type": "Point", "coordinates": [1.0, 2.0]},
            }
        ],
    }
    (tmp_path / "badcrs.geojson").write_text(json.dumps(document))
    with pytest.raises(ReferenceLabelError) as error:
        read_reference_labels(str(tmp_path / "badcrs.geojson"))
    assert "its CRS 'EPSG:999999' cannot be read" in _one_line(error)


def test_class_field_missing_lists_the_fields(tmp_path):
    frame = gpd.GeoDataFrame(
        {"landuse": ["forest"], "note": ["x"]}, geometry=[chip_box(ROW, COL)], crs=UTM
    )
    with pytest.raises(ReferenceLabelError) as error:
        read_reference_labels(str(write(frame, tmp_path / "f.gpkg")))
    assert _one_line(error).endswith("class field 'class' does not exist; fields: landuse, note")


def test_null_or_empty_geometries_and_no_features(tmp_path):
    point = {"type": "Point", "coordinates": [15.7, 50.3]}
    features = [
        {"type": "Feature", "properties": {"class": "forest"}, "geometry": point},
        {"type": "Feature", "properties": {"class": "forest"}, "geometry": None},
        {
            "type": "Feature",
            "properties": {"class": "built"},
            "geometry": {"type": "Polygon", "coordinates": []},
        },
    ]
    path = tmp_path / "nulls.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    with pytest.raises(ReferenceLabelError) as error:
        read_reference_labels(str(path))
    assert _one_line(error).endswith("feature(s) 1, 2 have a null or empty geometry")

    path.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    with pytest.raises(ReferenceLabelError, match="has no features"):
        read_reference_labels(str(path))

    csv = tmp_path / "nocoords.csv"
    csv.write_text("easting,northing,class\n1,2,forest\n")
    with pytest.raises(ReferenceLabelError) as error:
        read_reference_labels(str(csv))
    assert "a CSV needs lon/lat" in _one_line(error) and "easting, northing, class" in str(
        error.value
    )
