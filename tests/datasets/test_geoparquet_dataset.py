"""Chip bounds written as GeoParquet by the Spark tasks: geopandas opens the folder with the right
CRS, one CRS per file, locally and on Blob (Azurite)."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyarrow.parquet as pq
import pytest
import rasterio
from conftest import CZECH_SCENE as SCENE
from kedro.io.core import DatasetError
from pyproj import CRS, Transformer

from aerial_kedro.datasets import GeoParquetDataset

CHIP_M = 640.0
SCHEMA = (
    "chip_id string, crs string, minx double, miny double, maxx double, maxy double, "
    "predicted_label string, probabilities array<float>"
)


def scene_chips(crs: str | None = None) -> list[tuple]:
    """The scene's 640 m chip grid (27 x 18 chips) in its own CRS, or its corners moved to
    ``crs`` (a neighbouring UTM zone: the case of a mosaic across a zone boundary)."""
    with rasterio.open(SCENE) as scene:
        left, bottom, right, top = scene.bounds
        scene_crs = scene.crs.to_string()
    rows = []
    for i, y in enumerate(np.arange(top, bottom, -CHIP_M)[:-1]):
        for j, x in enumerate(np.arange(left, right, CHIP_M)[:-1]):
            bounds = (float(x), float(y - CHIP_M), float(x + CHIP_M), float(y))
            if crs is not None:
                move = Transformer.from_crs(scene_crs, crs, always_xy=True)
                bounds = tuple(float(v) for v in move.transform_bounds(*bounds))
            label = ("Forest", "Crops", "Urban")[(i + j) % 3]
            rows.append(
                (f"{crs or scene_crs}-{i}-{j}", crs or scene_crs, *bounds, label, [0.2, 0.8])
            )
    return rows


def part_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.parquet"))


def test_chips_open_in_geopandas_with_the_scene_crs(spark, tmp_path):
    chips = spark.createDataFrame(scene_chips(), SCHEMA).repartition(3)
    root = tmp_path / "out" / "chips.geoparquet"
    dataset = GeoParquetDataset(filepath=str(root))
    dataset.save(chips)

    files = part_files(root)
    # One file per Spark task (partition), each named by its partition: the tasks wrote them.
    assert [f.name for f in files] == [
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    assert {f.parent.name for f in files} == {"EPSG_32633"}
    geo = json.loads(pq.read_schema(files[0]).metadata[b"geo"])
    assert geo["version"] == "1.1.0" and geo["primary_column"] == "geometry"
    column = geo["columns"]["geometry"]
    assert column["encoding"] == "WKB" and column["geometry_types"] == ["Polygon"]
    assert CRS.from_json_dict(column["crs"]).to_epsg() == 32633
    assert column["covering"]["bbox"]["xmin"] == ["bbox", "xmin"]

    # Plain geopandas on the folder, as a user would open it.
    frame = gpd.read_parquet(root)
    assert frame.crs.to_epsg() == 32633
    assert len(frame) == chips.count() == 27 * 18
    assert np.allclose(frame.geometry.bounds.to_numpy(), frame[["minx", "miny", "maxx", "maxy"]])
    assert np.allclose(frame.geometry.area, CHIP_M**2)

    loaded = dataset.load()
    assert loaded.crs.to_epsg() == 32633 and len(loaded) == len(frame)
    assert "bbox" not in loaded.columns
    assert sorted(loaded.chip_id) == sorted(frame.chip_id)
    assert list(loaded.probabilities.iloc[0]) == pytest.approx([0.2, 0.8])


def test_saving_again_replaces_the_folder(spark, tmp_path):
    root = tmp_path / "chips.geoparquet"
    dataset = GeoParquetDataset(filepath=str(root))
    dataset.save(spark.createDataFrame(scene_chips(), SCHEMA).repartition(4))
    dataset.save(spark.createDataFrame(scene_chips()[:10], SCHEMA).coalesce(1))
    assert [f.name for f in part_files(root)] == ["part-00000.parquet"]
    assert len(dataset.load()) == 10


def test_mixed_crs_run_writes_one_crs_per_folder(spark, tmp_path):
    rows = scene_chips() + scene_chips("EPSG:32634")
    root = tmp_path / "mosaic.geoparquet"
    GeoParquetDataset(filepath=str(root)).save(spark.createDataFrame(rows, SCHEMA).repartition(2))

    folders = {f.parent.name for f in part_files(root)}
    assert folders == {"EPSG_32633", "EPSG_32634"}
    for file in part_files(root):
        crs = json.loads(pq.read_schema(file).metadata[b"geo"])["columns"]["geometry"]["crs"]
        assert f"EPSG_{CRS.from_json_dict(crs).to_epsg()}" == file.parent.name
        assert set(pq.read_table(file, columns=["crs"]).column("crs").to_pylist()) == {
            file.parent.name.replace("_", ":")
        }

    with pytest.raises(DatasetError, match="2 CRSs .*EPSG:32633, EPSG:32634.*load_args"):
        GeoParquetDataset(filepath=str(root)).load()
    lonlat = GeoParquetDataset(filepath=str(root), load_args={"crs": "EPSG:4326"}).load()
    assert lonlat.crs.to_epsg() == 4326 and len(lonlat) == len(rows)
    # Both zones' copies of the scene land on the same ground (near 15.7 E, 50.3 N).
    west, south, east, north = lonlat.total_bounds
    assert 15.5 < west < east < 15.9 and 50.2 < south < north < 50.4


def test_rows_without_bounds_get_null_geometry(spark, tmp_path):
    rows = [("tile-1", None, None, None, None, None, "Forest", [0.9, 0.1])]
    root = tmp_path / "tiles.geoparquet"
    dataset = GeoParquetDataset(filepath=str(root))
    dataset.save(spark.createDataFrame(rows, SCHEMA))
    assert {f.parent.name for f in part_files(root)} == {"no_crs"}
    loaded = dataset.load()
    assert len(loaded) == 1 and loaded.geometry.isna().all() and loaded.crs is None


def test_missing_bounds_column_names_it(spark, tmp_path):
    frame = spark.createDataFrame(
        [("a", "EPSG:32633", 0.0)], "chip_id string, crs string, minx double"
    )
    with pytest.raises(DatasetError, match="miny, maxx, maxy"):
        GeoParquetDataset(filepath=str(tmp_path / "x.geoparquet")).save(frame)


def test_chips_on_blob(spark, tmp_path_factory):
    from azure.storage.blob import BlobServiceClient
    from blob.azurite import Azurite

    server = Azurite.start(tmp_path_factory.mktemp("azurite"))
    try:
        BlobServiceClient.from_connection_string(server.connection_string).create_container("maps")
        dataset = GeoParquetDataset(
            filepath="abfs://maps/run/chips.geoparquet",
            credentials={"connection_string": server.connection_string},
        )
        chips = spark.createDataFrame(scene_chips(), SCHEMA).repartition(2)
        dataset.save(chips)
        names = sorted(Path(p).name for p in dataset._fs.find("maps/run/chips.geoparquet"))
        assert names == ["part-00000.parquet", "part-00001.parquet"]
        loaded = dataset.load()
        assert loaded.crs.to_epsg() == 32633 and len(loaded) == 27 * 18
    finally:
        server.stop()


def test_preview_is_a_table_of_the_first_chips_with_wkt_geometry(spark, tmp_path):
    import inspect

    from shapely import wkt

    root = tmp_path / "chips.geoparquet"
    dataset = GeoParquetDataset(filepath=str(root))
    dataset.save(spark.createDataFrame(scene_chips(), SCHEMA).coalesce(1))

    table = dataset.preview(nrows=3)
    assert len(table["data"]) == 3
    row = dict(zip(table["columns"], table["data"][0], strict=True))
    assert wkt.loads(row["geometry"]).bounds == pytest.approx(
        (row["minx"], row["miny"], row["maxx"], row["maxy"])
    )
    assert row["predicted_label"] in {"Forest", "Crops", "Urban"}
    assert str(inspect.signature(dataset.preview).return_annotation) == "TablePreview"
