"""OSCD change labels (not georeferenced) -> per-chip changed fraction on the UTM chip grid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import rasterio
from conftest import SHARED_DATA
from rasterio.transform import array_bounds, rowcol
from rasterio.warp import transform as warp_transform
from rasterio.warp import transform_bounds

from aerial_kedro.change.reference import (
    chip_changed_fraction,
    read_reference_mask,
    reference_truth,
)
from aerial_kedro.geo.grid import chips_inside

OSCD = SHARED_DATA / "oscd"
UTM = {"pisa": "EPSG:32632", "abudhabi": "EPSG:32640"}


def band_files(city: str, date: str) -> list[str]:
    return sorted(str(p) for p in (OSCD / city / date).glob("*.tif"))


def chips_over(mask, crs: str) -> pd.DataFrame:
    bounds = transform_bounds(mask.crs, crs, *array_bounds(*mask.changed.shape, mask.transform))
    rows, cols = chips_inside(bounds, 640.0)
    return pd.DataFrame(
        [{"chip_id": f"{r}_{c}", "crs": crs, "row": r, "col": c} for r in rows for c in cols]
    )


@pytest.fixture(scope="module")
def pisa():
    mask = read_reference_mask(
        str(OSCD / "pisa" / "change_labels.tif"), 2, band_files("pisa", "imgs_2")
    )
    chips = chips_over(mask, UTM["pisa"])
    return mask, chips, chip_changed_fraction(mask, chips, 64, 10.0, rows_per_strip=3)


def test_labels_borrow_the_georeference_of_same_sized_imagery(pisa):
    mask, _, _ = pisa
    with rasterio.open(band_files("pisa", "imgs_2")[0]) as src:
        assert mask.crs == src.crs and mask.transform == src.transform
    assert mask.changed.shape == (776, 718)
    assert mask.changed.mean() == pytest.approx(9130 / (9130 + 548038))


def test_abudhabi_takes_the_imagery_of_its_own_size():
    """Its second date was resampled to 782 x 795 px; the labels match the first date's grid."""
    candidates = band_files("abudhabi", "imgs_2") + band_files("abudhabi", "imgs_1")
    mask = read_reference_mask(str(OSCD / "abudhabi" / "change_labels.tif"), 2, candidates)
    assert "imgs_1" in mask.georeferenced_from
    with pytest.raises(ValueError, match=r"is 785 x 799 px, but the after date is 782 x 795 px"):
        read_reference_mask(
            str(OSCD / "abudhabi" / "change_labels.tif"), 2, band_files("abudhabi", "imgs_2")
        )


def test_chip_fraction_equals_sampling_each_chip_pixel_centre(pisa):
    mask, chips, fractions = pisa
    assert len(fractions) == len(chips) == 117
    by_id = fractions.set_index("chip_id")
    crs = UTM["pisa"]
    # Brute force for the chips with most change and a few without: every 10 m pixel centre of
    # the chip, transformed to lon/lat, looked up in the label grid.
    checked = by_id.sort_values("reference_fraction").index[[0, 50, -3, -2, -1]]
    offsets = (np.arange(64) + 0.5) * 10.0
    for chip_id in checked:
        r, c = (int(v) for v in chip_id.split("_"))
        xs, ys = np.meshgrid(c * 640.0 + offsets, -r * 640.0 - offsets)
        lons, lats = warp_transform(crs, "EPSG:4326", xs.ravel(), ys.ravel())
        i, j = rowcol(mask.transform, lons, lats)
        expected = mask.changed[np.asarray(i), np.asarray(j)].mean()
        assert by_id.loc[chip_id, "reference_fraction"] == pytest.approx(expected, abs=0.01)
    assert (by_id["reference_coverage"] == 1.0).all()


def test_changed_chips_at_the_default_min_fraction(pisa):
    _, _, fractions = pisa
    truth = reference_truth(fractions, 0.1)
    assert 3 <= int(truth["reference_changed"].sum()) <= 8  # 1.6 % of pisa's pixels changed
    # A chip outside the labels is left out, not counted as unchanged.
    outside = pd.DataFrame([{"chip_id": "far", "crs": UTM["pisa"], "row": -6000, "col": 1000}])
    far = chip_changed_fraction(pisa[0], outside, 64, 10.0)
    assert far["reference_coverage"].item() == 0.0
    assert reference_truth(far, 0.1).empty


def test_polygons_of_changed_areas_give_the_raster_labels_fractions(pisa, tmp_path):
    """OSCD Pisa's change raster, vectorised into polygons, must label the same chips."""
    import geopandas as gpd
    import shapely
    from rasterio.features import shapes

    from aerial_kedro.change.reference import is_vector_reference, vector_changed_fraction
    from aerial_kedro.geo.grid import chip_bounds

    mask, chips, fractions = pisa
    geoms = [
        shapely.geometry.shape(geom)
        for geom, value in shapes(mask.changed.astype("uint8"), transform=mask.transform)
        if value == 1
    ]
    path = tmp_path / "pisa_change.geojson"
    gpd.GeoDataFrame(geometry=geoms, crs=mask.crs).to_file(path, driver="GeoJSON")
    assert is_vector_reference(str(path)) and not is_vector_reference("change_labels.tif")

    chips = chips.copy()
    bounds = [chip_bounds(r, c, 640.0) for r, c in zip(chips["row"], chips["col"], strict=True)]
    chips[["minx", "miny", "maxx", "maxy"]] = bounds
    from_raster = fractions.set_index("chip_id")
    from_vector = vector_changed_fraction(str(path), chips).set_index("chip_id")
    inside = from_raster["reference_coverage"] > 0.99
    raster_fraction = from_raster.loc[inside, "reference_fraction"]
    vector_fraction = from_vector.loc[raster_fraction.index, "reference_fraction"]
    assert raster_fraction.max() > 0.1  # Pisa has changed chips
    # Exact polygon areas vs nearest-neighbour resampled pixels: equal to a few percent.
    assert np.abs(vector_fraction - raster_fraction).max() < 0.03
    assert ((vector_fraction >= 0.1) == (raster_fraction >= 0.1)).mean() > 0.97


def test_unreadable_polygons_fail_in_one_line(tmp_path):
    from aerial_kedro.change.reference import vector_changed_fraction

    path = tmp_path / "broken.geojson"
    path.write_text("not geojson")
    chips = pd.DataFrame({"chip_id": ["a"], "crs": ["EPSG:32632"], "minx": [0.0], "miny": [0.0],
                          "maxx": [640.0], "maxy": [640.0]})  # fmt: skip
    with pytest.raises(ValueError, match="change.reference: .*broken.geojson.* cannot be read") as error:
        vector_changed_fraction(str(path), chips)
    assert "\n" not in str(error.value)


def test_polygons_are_read_from_an_fsspec_url_like_reference_labels(tmp_path):
    """Change polygons go through the labels' reader: a URL (memory:// here, az:// for Blob)
    gives the fractions the local file gives, and a KML/FlatGeobuf-style extension counts as
    vector."""
    import fsspec
    import geopandas as gpd
    import shapely

    from aerial_kedro.change.reference import is_vector_reference, vector_changed_fraction

    square = shapely.box(0.0, 0.0, 320.0, 640.0)  # the left half of chip a
    path = tmp_path / "changed.geojson"
    gpd.GeoDataFrame(geometry=[square], crs="EPSG:32632").to_file(path, driver="GeoJSON")
    with fsspec.open("memory://change/changed.geojson", "wb") as stream:
        stream.write(path.read_bytes())
    chips = pd.DataFrame({"chip_id": ["a", "b"], "crs": ["EPSG:32632"] * 2,
                          "minx": [0.0, 640.0], "miny": [0.0, 0.0], "maxx": [640.0, 1280.0],
                          "maxy": [640.0, 640.0]})  # fmt: skip
    local = vector_changed_fraction(str(path), chips).set_index("chip_id")
    remote = vector_changed_fraction("memory://change/changed.geojson", chips).set_index("chip_id")
    assert local["reference_fraction"].to_dict() == pytest.approx({"a": 0.5, "b": 0.0})
    assert remote["reference_fraction"].to_dict() == local["reference_fraction"].to_dict()
    assert is_vector_reference("areas.fgb") and is_vector_reference("areas.gpkg")
