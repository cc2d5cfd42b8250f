"""Shared fixtures: one local SparkSession per test session, and the real sample data."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data"
SAMPLE_TILES = SHARED_DATA / "eurosat-sample"
RASTERS = SHARED_DATA / "rasters"
CZECH_SCENE = RASTERS / "czech_s2_tci_20220319.tif"  # 1783 x 1159 px at 10 m, EPSG:32633
CZECH_PARTS = sorted((RASTERS / "czech-2x2").glob("*.tif"))  # the same scene cut 2x2
CZECH_SCENE_BOUNDS = (543100.0, 5567910.0, 560930.0, 5579500.0)

PISA_BEFORE = SHARED_DATA / "oscd" / "pisa" / "imgs_1"  # uint16, one file per band, EPSG:4326


def copy_sample_tiles(sample_tiles: Path, root: Path, classes: dict[str, int]) -> list[Path]:
    """The first ``n`` real EuroSAT tiles of each class folder, copied under ``root``."""
    copied = []
    for label, n in classes.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for source in sorted((sample_tiles / label).glob("*.jpg"))[:n]:
            target = root / label / source.name
            target.write_bytes(source.read_bytes())
            copied.append(target)
    return copied


def crop_raster(source: Path, target: Path, width: int, height: int) -> Path:
    """The top-left ``width`` x ``height`` px of ``source`` as a GeoTIFF (its georeference kept)."""
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(source) as src:
        window = Window(0, 0, width, height)
        profile = {**src.profile, "width": width, "height": height,
                   "transform": src.window_transform(window)}  # fmt: skip
        pixels = src.read(window=window)
    with rasterio.open(target, "w", **profile) as dst:
        dst.write(pixels)
    return target


def copy_tiles_as(sample_tiles: Path, root: Path, classes: dict[str, tuple[str, int]]) -> Path:
    """``root`` holding class folders of one's own names: ``{name: (EuroSAT class, n tiles)}``,
    each the first ``n`` real tiles of that class copied under ``root/<name>``."""
    for name, (source, n) in classes.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for tile in sorted((sample_tiles / source).glob("*.jpg"))[:n]:
            (root / name / tile.name).write_bytes(tile.read_bytes())
    return root


def pisa_bands_of_different_sizes(folder: Path) -> Path:
    """Pisa's B03/B04 linked into ``folder`` beside a B02 cut to 600 x 500 px."""
    import rasterio

    folder.mkdir(parents=True, exist_ok=True)
    for band in ("B03", "B04"):
        (folder / f"pisa_{band}.tif").symlink_to(next(PISA_BEFORE.glob(f"*_{band}.tif")))
    with rasterio.open(next(PISA_BEFORE.glob("*_B02.tif"))) as src:
        profile, pixels = src.profile, src.read(window=((0, 500), (0, 600)))
    profile.update(width=600, height=500)
    with rasterio.open(folder / "pisa_B02.tif", "w", **profile) as dst:
        dst.write(pixels)
    return folder


os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)


def pytest_configure(config: pytest.Config) -> None:
    if not SAMPLE_TILES.is_dir():
        raise pytest.UsageError(f"Test data missing: {SAMPLE_TILES} (../shared/data beside the project)")
    # The third-party noise a `kedro run` silences (aerial_kedro.quiet, the one list) is silenced
    # in the tests too: pytest resets warning filters around each test, so they are given to it.
    from aerial_kedro.quiet import THIRD_PARTY_WARNINGS

    for message, category, _why in THIRD_PARTY_WARNINGS:
        config.addinivalue_line("filterwarnings", f"ignore:{message}:{category.__name__}")


# Tiers: `make test` runs everything; `make test-fast` (-m "not slow") leaves out every test that
# runs a pipeline, a kedro subprocess or a server. A test is slow when its module says so
# (pytestmark) or when it needs one of these fixtures.
SLOW_FIXTURES = {"trained_project", "azurite", "stopped_azurite", "blob_service", "standalone_cluster"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    # `make test`'s workers take whole modules in this order: modules with slow tests first, the
    # quick ones last, so that the workers finish together instead of one waiting on a long module
    # handed out at the end. Each module keeps its own order.
    slow_modules = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in slow_modules)


JAR_CACHE = PROJECT_ROOT / ".cache" / "jars"
# The project's own Spark settings; the test session takes the worker daemon from them.
PROJECT_SPARK_CONF = yaml.safe_load((PROJECT_ROOT / "conf" / "base" / "spark.yml").read_text())
DAEMON_SETTING = "spark.python.daemon.module"


def cached_jars() -> list[str]:
    """JVM jars the set-up fetched from Maven Central into .cache/jars/<group>/ (hadoop-azure, SynapseML)."""
    return sorted(str(path) for path in JAR_CACHE.glob("*/*.jar"))


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    if cached_jars():
        builder = builder.config("spark.jars", ",".join(cached_jars()))
    session = (
        builder.master("local[2]")
        .appName("aerial_kedro-tests")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.sources.partitionOverwriteMode", "dynamic")
        .config("spark.driver.memory", "4g")
        .config(DAEMON_SETTING, PROJECT_SPARK_CONF[DAEMON_SETTING])
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def sample_tiles() -> Path:
    return SAMPLE_TILES


@pytest.fixture(scope="session")
def efficientnet_lite0():
    """(onnx bytes, spec) of the default featurizer, built once."""
    from aerial_kedro.featurizers.efficientnet_lite import build_efficientnet_lite

    return build_efficientnet_lite("efficientnet_lite0")


@functools.cache
def empty_mlflow_store() -> bytes:
    """An MLflow sqlite store with its schema made (once per test session): a fresh project's
    first run would otherwise spend 1-3 s on MLflow's database migrations."""
    import tempfile

    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "mlflow.db"
        store = SqlAlchemyStore(f"sqlite:///{database.as_posix()}", (Path(folder) / "mlruns").as_uri())
        store.engine.dispose()
        return database.read_bytes()


def make_project_copy(destination: Path) -> Path:
    """A throw-away Kedro project (this repo's conf + pyproject) whose data/ lives in ``destination``,
    with an empty MLflow store (its runs are recorded there as in a project that ran before)."""
    import shutil

    destination.mkdir(parents=True, exist_ok=True)
    shutil.copytree(PROJECT_ROOT / "conf", destination / "conf", dirs_exist_ok=True)
    shutil.copy(PROJECT_ROOT / "pyproject.toml", destination / "pyproject.toml")
    if not (destination / "mlflow.db").exists():
        (destination / "mlflow.db").write_bytes(empty_mlflow_store())
    # bootstrap_project wants a source dir; the package itself is imported from the installed project.
    (destination / "src").mkdir(exist_ok=True)
    return destination


# Hyperparameters for tests where the classifiers are passengers (the pipeline, not the model, is
# under test): fewer trees and L-BFGS iterations than conf/base, the same code paths.
PASSENGER_MODELS = {
    "random_forest.classifier.hyperparameters.numTrees": 30,
    "logistic_regression.classifier.hyperparameters.maxIter": 60,
}


def nested_params(params: dict) -> dict:
    """Dotted keys as nested dicts, deep-merged, as ``kedro run --params=a.b=1`` reads them:
    a session given ``{"a.b": 1}`` itself would keep one top-level parameter named "a.b"."""
    out: dict = {}
    for key, value in params.items():
        *parents, leaf = key.split(".")
        node = out
        for parent in parents:
            node = node.setdefault(parent, {})
        if isinstance(value, dict) and isinstance(node.get(leaf), dict):
            node[leaf] = nested_params({**node[leaf], **value})
        else:
            node[leaf] = nested_params(value) if isinstance(value, dict) else value
    return out


def run_kedro(project: Path, pipeline: str, env: str = "local", **runtime_params) -> dict:
    """Run ``pipeline`` of ``project`` in-process through a KedroSession (reusing the test SparkSession)."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    params = nested_params(runtime_params)
    with KedroSession.create(project_path=project, env=env, runtime_params=params) as session:
        return session.run(pipeline_names=[pipeline])


@pytest.fixture(scope="session")
def trained_project(tmp_path_factory, spark, sample_tiles) -> Path:
    """A project copy on which `train` ran once on a copy of the 300-tile sample plus bad tiles.

    Bad tiles added: a truncated JPEG, an empty file and a text file named .jpg (all rejected),
    and a grayscale PNG (accepted and converted).
    """
    import shutil

    from PIL import Image

    root = tmp_path_factory.mktemp("trained")
    tiles = root / "tiles"
    shutil.copytree(sample_tiles, tiles)
    forest = (tiles / "Forest" / "Forest_1.jpg").read_bytes()
    (tiles / "Forest" / "truncated.jpg").write_bytes(forest[: len(forest) // 3])
    (tiles / "River" / "empty.jpg").write_bytes(b"")
    (tiles / "SeaLake" / "notes.jpg").write_text("not an image")
    Image.open(tiles / "Pasture" / "Pasture_1.jpg").convert("L").save(tiles / "Pasture" / "gray.png")
    project = make_project_copy(root / "project")
    run_kedro(project, "train", tiles_dir=str(tiles), **PASSENGER_MODELS)
    return project


def versioned_path(path: Path) -> Path:
    """The newest saved version of a Kedro-versioned entry saved at ``path``
    (``<path>/<version>/<name>``), e.g. a model or the featurizer ONNX ``train`` wrote."""
    versions = sorted(p.name for p in path.iterdir() if p.is_dir())
    assert versions, f"no saved version under {path}"
    return path / versions[-1] / path.name


def versioned_blob(names: Iterable[str], path: str) -> str:
    """The blob path of the newest saved version of a Kedro-versioned entry at ``path``."""
    prefix = path.rstrip("/") + "/"
    versions = sorted({name[len(prefix):].split("/")[0] for name in names if name.startswith(prefix)})
    assert versions, f"no saved version under {path}"
    return f"{prefix}{versions[-1]}/{prefix.rstrip('/').rsplit('/', 1)[-1]}"


def raw_band_vrt(target: str) -> str:
    """A VRT reading ``target``'s bytes as an 8-bit band: a hostile file posing as a raster."""
    return f"""<VRTDataset rasterXSize="64" rasterYSize="64">
  <SRS>EPSG:32633</SRS>
  <GeoTransform>512000, 10, 0, 5568000, 0, -10</GeoTransform>
  <VRTRasterBand dataType="Byte" band="1" subClass="VRTRawRasterBand">
    <SourceFilename relativeToVRT="0">{target}</SourceFilename>
    <ImageOffset>0</ImageOffset><PixelOffset>1</PixelOffset><LineOffset>64</LineOffset>
  </VRTRasterBand>
</VRTDataset>"""


def scoring_run(run_id: str, source: str = "scene.tif", kind: str = "rasters", **fields):
    """A :class:`ScoringRun` of ``run_id`` for node tests: one chunk, 8-bit reading, no overlap."""
    from aerial_kedro.chips.records import ScoringRun

    defaults = {"source_name": source.rsplit("/", 1)[-1].split(".")[0], "n_items": 1,
                "n_chunks": 1, "n_inputs": 1, "n_rejected": 0, "radiometry": None,
                "chip_stride_px": None, "max_empty_fraction": 0.5, "radiometry_reference": None,
                "radiometry_fit": None, "started_at": "2026-01-01T00:00:00+00:00"}  # fmt: skip
    return ScoringRun(run_id=run_id, source=source, kind=kind, **{**defaults, **fields})


def free_port() -> int:
    """A free port below 49152: kedro viz refuses higher ("system") ports, where OS ephemeral ports are."""
    import random
    import socket

    for port in random.sample(range(20_000, 49_000), 50):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port in 20000-48999")
