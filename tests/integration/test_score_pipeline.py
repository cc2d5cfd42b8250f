"""`score` end to end through Kedro on real Sentinel-2 rasters, with the model `train` wrote.

The whole-scene run is interrupted for real (a `kedro run` subprocess killed once some chunks
are complete) and then run again in-process, so every check on the scene's outputs is also a
check that the resumed run is complete and exactly-once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import rasterio
import rasterio.warp
from conftest import CZECH_SCENE as SCENE
from conftest import RASTERS, make_project_copy, pisa_bands_of_different_sizes, run_kedro
from PIL import Image

from aerial_kedro.chip_rows import PREDICTION_COLUMNS
from aerial_kedro.chips.planning import source_slug
from aerial_kedro.geo.chip_planning import plan_chips_from_paths
from aerial_kedro.geo.grid import ChipGrid, grid_extent

pytestmark = pytest.mark.slow

PARTS = RASTERS / "czech-2x2"
SCENE_BOUNDS = (543100.0, 5567910.0, 560930.0, 5579500.0)
PISA = RASTERS.parent / "oscd" / "pisa" / "imgs_1"  # uint16, one file per band, EPSG:4326
# The default scoring.max_empty_fraction: edge chips at least half inside the scene are planned.
MAX_EMPTY = 0.5
# Small chunks so the scene has several: interruption and resumption happen between them.
CHUNKING = {"chunk_size": 64, "chunks_per_job": 1}
PREDICTIONS = "data/07_model_output/scoring/predictions"
# Map products: one folder per scored source (its run's source name).
MAPS = "data/08_reporting/maps"


@dataclass(frozen=True)
class ScoreRun:
    reports: Path  # a copy of data/08_reporting/maps/<source name> right after the run
    shares: dict
    predictions_dir: Path

    @property
    def run_id(self) -> str:
        return self.shares["run_id"]

    def predictions(self, spark):
        """Every row on disk for this run, finished or not (stricter than the dataset's view)."""
        frame = spark.read.parquet(str(self.predictions_dir))
        return frame.where(frame.run_id == self.run_id)


def score(project: Path, source: Path, snapshot: Path, **scoring) -> ScoreRun:
    run_kedro(project, "score", score_source=str(source), scoring=scoring)
    shutil.copytree(project / MAPS / source_slug(str(source)), snapshot)
    return ScoreRun(
        snapshot, json.loads((snapshot / "class_shares.json").read_text()), project / PREDICTIONS
    )


def completion_markers(project: Path) -> dict[str, str]:
    """``{"run_id=../chunk=..": finished_at}`` of every completed chunk."""
    root = project / PREDICTIONS
    markers = {}
    for marker in root.glob("run_id=*/chunk=*/_COMPLETE.json"):
        markers[marker.parent.relative_to(root).as_posix()] = json.loads(marker.read_text())[
            "finished_at"
        ]
    return markers


def kill_scoring_after_chunks(
    project: Path, source: Path, chunks: int, timeout: float = 300
) -> dict[str, str]:
    """Run `kedro run --pipelines=score` in a subprocess, SIGKILL it once `chunks` more are complete.

    Returns the completion markers that run wrote.
    """
    params = (
        f"score_source={source},scoring.chunk_size={CHUNKING['chunk_size']},"
        f"scoring.chunks_per_job={CHUNKING['chunks_per_job']}"
    )
    env = dict(
        os.environ,
        KEDRO_DISABLE_TELEMETRY="true",
        SPARK_LOCAL_IP="127.0.0.1",
        PYSPARK_PYTHON=sys.executable,
    )
    kedro = Path(sys.executable).with_name("kedro")
    log_path = project / "interrupted_score_run.log"
    before = completion_markers(project)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(kedro), "run", "--pipelines=score", f"--params={params}"],
            cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        try:
            while len(completion_markers(project).keys() - before.keys()) < chunks:
                if process.poll() is not None:
                    tail = log_path.read_text(errors="replace")[-3000:]
                    raise AssertionError(f"scoring ended before it was interrupted:\n{tail}")
                if time.monotonic() > deadline:
                    raise AssertionError("no chunk completed in time")
                time.sleep(0.1)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)  # the run, its JVM and its Python workers
            process.wait()
    return {key: value for key, value in completion_markers(project).items() if key not in before}


@pytest.fixture(scope="module")
def interrupted(trained_project) -> dict[str, str]:
    """Markers left by a scoring run of the whole scene killed after 2 of its 8 chunks."""
    return kill_scoring_after_chunks(trained_project, SCENE, chunks=2)


@pytest.fixture(scope="module")
def scene_run(trained_project, interrupted, tmp_path_factory) -> ScoreRun:
    """The same scoring run again, in-process: it resumes the interrupted one."""
    return score(trained_project, SCENE, tmp_path_factory.mktemp("scene") / "reports", **CHUNKING)


@pytest.fixture(scope="module")
def scene_chips():
    chips, problems = plan_chips_from_paths(
        [str(SCENE)], ChipGrid(64, 10.0), max_empty_fraction=MAX_EMPTY
    )
    assert not problems
    return chips


def test_interrupted_run_resumes_and_every_chip_appears_once(
    spark, trained_project, scene_run, interrupted, scene_chips
):
    prefix = f"run_id={scene_run.run_id}/"
    assert len(interrupted) >= 2
    assert all(key.startswith(prefix) for key in interrupted)  # the same run id: a resumption
    after = {k: v for k, v in completion_markers(trained_project).items() if k.startswith(prefix)}
    n_chunks = -(-len(scene_chips) // CHUNKING["chunk_size"])
    assert len(after) == n_chunks == 8
    # Chunks finished before the kill were not scored again: their markers are untouched.
    assert {key: after[key] for key in interrupted} == interrupted

    predictions = scene_run.predictions(spark)
    chip_ids = [row.chip_id for row in predictions.select("chip_id").collect()]
    assert len(chip_ids) == len(set(chip_ids)) == len(scene_chips)
    assert set(chip_ids) == {chip.chip_id for chip in scene_chips}
    assert scene_run.shares["complete"] is True
    assert scene_run.shares["chips"] == {
        "planned": len(scene_chips), "scored": len(scene_chips), "empty": 0, "unreadable": 0, "pending": 0,
    }  # fmt: skip


def test_predictions_schema_and_values(spark, scene_run):
    row = scene_run.predictions(spark).where("status = 'scored'").first().asDict()
    assert set(row) == {*PREDICTION_COLUMNS, "run_id", "chunk"}
    assert row["crs"] == "EPSG:32633" and row["kind"] == "chip"
    assert row["source"] == str(SCENE)
    assert row["maxx"] - row["minx"] == row["maxy"] - row["miny"] == 640.0
    assert 15.6 < row["lon"] < 15.9 and 50.26 < row["lat"] < 50.37
    assert len(row["probabilities"]) == len(row["classes"]) == 10
    assert row["classes"][row["class_index"]] == row["predicted_label"]
    assert row["confidence"] == pytest.approx(max(row["probabilities"]))
    assert 0 <= row["entropy"] <= np.log(10) + 1e-6
    assert row["model"] == "logistic_regression" and row["featurizer"] == "efficientnet_lite0"


def test_class_geotiff_covers_the_scene_chip_grid(scene_run, scene_chips):
    row0, col0, n_rows, n_cols = grid_extent(scene_chips)
    minx, _, _, maxy = ChipGrid(64, 10.0).bounds_of(row0, col0)
    with rasterio.open(scene_run.reports / "land_use_classes.tif") as classes:
        assert classes.crs.to_epsg() == 32633
        assert classes.res == (640.0, 640.0)
        # 17 full rows plus the north-edge row (97 % inside the scene); the west and east
        # columns (41 %, 45 % inside) and the south row (14 %) stay out at max_empty_fraction 0.5.
        assert (classes.height, classes.width) == (n_rows, n_cols) == (18, 27)
        assert tuple(classes.bounds) == (minx, maxy - 640.0 * n_rows, minx + 640.0 * n_cols, maxy)
        left, bottom, right, top = classes.bounds
        assert left >= SCENE_BOUNDS[0] and bottom >= SCENE_BOUNDS[1]
        assert right <= SCENE_BOUNDS[2]
        assert SCENE_BOUNDS[3] < top <= SCENE_BOUNDS[3] + 640.0 * MAX_EMPTY
        assert json.loads(classes.tags()["class_names"]) == scene_run.shares["classes"]
        assert classes.colormap(1)[1][:3] == (23, 112, 42)  # Forest
        values = classes.read(1)
    assert values.max() < 10  # every chip of the grid block was classified


def test_geojson_is_in_lon_lat_over_the_scene(scene_run):
    collection = json.loads((scene_run.reports / "land_use_chips.geojson").read_text())
    assert len(collection["features"]) == scene_run.shares["chips"]["scored"]
    lons, lats = np.array(
        [
            point
            for feature in collection["features"]
            for point in feature["geometry"]["coordinates"][0]
        ]
    ).T
    assert 15.6 <= lons.min() and lons.max() <= 15.9
    assert 50.26 <= lats.min() and lats.max() <= 50.37
    properties = collection["features"][0]["properties"]
    assert properties["class"] in scene_run.shares["classes"] and 0 < properties["confidence"] <= 1


def test_png_map_and_shares(scene_run):
    shares = scene_run.shares
    assert sum(shares["shares"].values()) == pytest.approx(1.0)
    assert sum(shares["shares_smoothed"].values()) == pytest.approx(1.0)
    with Image.open(scene_run.reports / "land_use_map.png") as image:
        assert image.width > 1.8 * image.height  # two panels side by side plus the legend
        colours = {tuple(c) for c in np.asarray(image.convert("RGB")).reshape(-1, 3)[::7]}
    assert len(colours) > 12


def test_2x2_split_gives_the_whole_scene_result(spark, trained_project, scene_run, tmp_path):
    split = score(trained_project, PARTS, tmp_path / "reports")  # default chunking: one job
    assert split.run_id != scene_run.run_id
    columns = ["chip_id", "predicted_label", "probabilities"]
    whole = {r.chip_id: r for r in scene_run.predictions(spark).select(columns).collect()}
    parts = {r.chip_id: r for r in split.predictions(spark).select(columns).collect()}
    assert set(parts) == set(whole)
    assert all(parts[chip].predicted_label == whole[chip].predicted_label for chip in whole)
    for chip in whole:
        np.testing.assert_allclose(parts[chip].probabilities, whole[chip].probabilities, atol=1e-5)
    with (
        rasterio.open(split.reports / "land_use_classes.tif") as a,
        rasterio.open(scene_run.reports / "land_use_classes.tif") as b,
    ):
        assert a.transform == b.transform
        np.testing.assert_array_equal(a.read(1), b.read(1))


def test_a_tile_folder_is_scored_without_georeference(
    spark, trained_project, sample_tiles, tmp_path
):
    run = score(trained_project, sample_tiles / "Forest", tmp_path / "reports")
    assert run.shares["kind"] == "tiles" and run.shares["chips"]["scored"] == 30
    predictions = run.predictions(spark).toPandas()
    assert sorted(predictions["chip_id"]) == sorted(f"Forest_{n}.jpg" for n in range(1, 31))
    assert predictions["source"].str.endswith(".jpg").all() and predictions["crs"].isna().all()
    assert (predictions["predicted_label"] == "Forest").sum() >= 25
    assert not (run.reports / "land_use_classes.tif").exists()  # nothing to place on a map
    collection = json.loads((run.reports / "land_use_chips.geojson").read_text())
    assert {feature["geometry"] is None for feature in collection["features"]} == {True}
    assert (run.reports / "land_use_map.png").stat().st_size > 10_000
    # No footprint, no STAC Item: a note replaces the Item an earlier raster run left there.
    note = json.loads((run.reports / "land_use_map.stac.json").read_text())
    assert note["stac_item"] is None and note["run_id"] == run.run_id


def test_bad_rasters_are_reported_and_the_good_one_is_scored(spark, trained_project, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    good = PARTS / "czech_s2_tci_20220319.3.tif"
    shutil.copy(good, folder / "good.tif")
    (folder / "garbage.tif").write_bytes(os.urandom(4096))
    with rasterio.open(good) as src:
        profile, pixels = src.profile, src.read(window=((0, 256), (0, 256)))
    profile.update(width=256, height=256, crs=None, transform=rasterio.Affine.identity())
    with rasterio.open(folder / "no_crs.tif", "w", **profile) as dst:
        dst.write(pixels)

    run = score(trained_project, folder, tmp_path / "reports", max_chunks=1, chunk_size=64)
    rejected = {
        Path(p["path"]).name: p["reason"]
        for p in json.loads((run.reports / "rejected_rasters.json").read_text())
    }
    assert set(rejected) == {"garbage.tif", "no_crs.tif"}
    assert rejected["garbage.tif"].startswith("cannot be opened as a raster")
    assert rejected["no_crs.tif"].startswith("has no CRS")
    assert run.shares["rejected_rasters"] == 2

    # max_chunks stopped the run after one chunk: the map says so; running again completes it.
    good_chips, _ = plan_chips_from_paths(
        [str(good)], ChipGrid(64, 10.0), max_empty_fraction=MAX_EMPTY
    )
    assert run.shares["complete"] is False
    assert (
        run.shares["chips"]["scored"] == 64
        and run.shares["chips"]["pending"] == len(good_chips) - 64
    )
    rerun = score(trained_project, folder, tmp_path / "reports-2", chunk_size=64)
    assert rerun.run_id == run.run_id and rerun.shares["complete"] is True
    assert rerun.predictions(spark).count() == rerun.shares["chips"]["scored"] == len(good_chips)
    # Once complete, running it again scores nothing and rebuilds the same products.
    markers = completion_markers(trained_project)
    third = score(trained_project, folder, tmp_path / "reports-3", chunk_size=64)
    assert completion_markers(trained_project) == markers
    assert third.shares == rerun.shares


def test_lon_lat_band_files_score_with_only_the_source(spark, trained_project, tmp_path):
    """OSCD Pisa (Sentinel-2 L1C uint16, one file per band, EPSG:4326) as a user has it."""
    run = score(trained_project, PISA, tmp_path / "reports")
    assert run.shares["radiometry"] == "sentinel2_l1c" and run.shares["complete"] is True
    predictions = run.predictions(spark).toPandas()
    scored = predictions[predictions["status"] == "scored"]
    assert len(scored) >= 0.9 * len(predictions) and len(predictions) == 144
    assert set(predictions["crs"]) == {"EPSG:32632"}  # Pisa's UTM zone
    assert predictions["source"].str.startswith('stack:["').all()
    with rasterio.open(next(PISA.glob("*_B04.tif"))) as band:
        west, south, east, north = band.bounds
    assert west < scored["lon"].min() and scored["lon"].max() < east
    assert south < scored["lat"].min() and scored["lat"].max() < north
    assert scored["cloud_fraction"].between(0, 0.5).all()
    assert scored["cloud_fraction"].mean() < 0.05  # an August scene without clouds
    # A built-up city centre: the urban classes are a real share of the map.
    urban = scored["predicted_label"].isin(["Residential", "Industrial", "Highway"]).mean()
    assert urban > 0.2
    with rasterio.open(run.reports / "land_use_classes.tif") as classes:
        assert classes.crs.to_epsg() == 32632 and classes.res == (640.0, 640.0)

    # Another declared conversion is another run: it never resumes into these chunks.
    offset = score(trained_project, PISA, tmp_path / "offset", radiometry="sentinel2_l1c_offset")
    assert offset.run_id != run.run_id and offset.shares["radiometry"] == "sentinel2_l1c_offset"


def test_bands_of_different_sizes_fail_before_scoring(trained_project, tmp_path):
    folder = pisa_bands_of_different_sizes(tmp_path / "bands")
    with pytest.raises(Exception, match=r"band files differ in size: .*pisa_B02.tif \(600 x 500"):
        run_kedro(trained_project, "score", score_source=str(folder))


def test_missing_model_asks_to_train_first(tmp_path):
    project = make_project_copy(tmp_path / "untrained")
    with pytest.raises(Exception, match=r"run `kedro run --pipelines=train` first"):
        run_kedro(project, "score", score_source=str(SCENE))


def test_chip_predictions_open_as_geoparquet_in_the_scene_crs(scene_run):
    import geopandas as gpd

    chips = gpd.read_parquet(scene_run.reports / "land_use_chips.geoparquet" / "EPSG_32633")
    assert chips.crs.to_epsg() == 32633
    assert len(chips) == scene_run.shares["chips"]["planned"]
    assert chips.geometry.area.round().eq(640.0 * 640.0).all()
    assert {"chip_id", "predicted_label", "confidence"} <= set(chips.columns)


def test_stac_item_describes_the_products_beside_it(scene_run):
    import pystac

    path = scene_run.reports / "land_use_map.stac.json"
    item = pystac.Item.from_file(str(path))
    assert item.id == scene_run.run_id
    assert set(item.assets) == {"classes", "chips", "chips_geojson", "map", "report"}
    for asset in item.assets.values():  # relative hrefs: every product sits beside the Item
        assert (path.parent / Path(asset.href).name).exists(), asset.href
    with rasterio.open(scene_run.reports / "land_use_classes.tif") as classes:
        expected = rasterio.warp.transform_bounds(classes.crs, "EPSG:4326", *classes.bounds)
        assert item.properties["proj:shape"] == [classes.height, classes.width]
    assert item.bbox == pytest.approx(expected, abs=1e-5)
    west, south, east, north = item.bbox
    assert 15.6 < west < east < 15.9 and 50.26 < south < north < 50.38
    assert item.properties["aerial:model"] == scene_run.shares["model"]
    assert item.properties["aerial:source"] == scene_run.shares["source"] == str(SCENE)
    titles = [c["title"] for c in item.assets["classes"].extra_fields["classification:classes"]]
    assert titles[:-1] == scene_run.shares["classes"]
