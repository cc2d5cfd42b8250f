"""Issue 13 item 7: a single-file product is replaced in one step, never seen half-written.

The project's own single-file datasets write locally under a hidden scratch name beside the
product and rename it into place (``os.replace``). So a reader or a concurrent run meets the
previous product or the complete new one, and a write that fails or is killed midway leaves the
previous product as it was.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import rasterio
from kedro.io.core import DatasetError
from rasterio.transform import from_origin

from aerial_kedro.datasets import BinaryFileDataset, ClassGeoTiffDataset
from aerial_kedro.datasets.fsspec_file import replacing
from aerial_kedro.geo.class_map import ClassRaster

NAMES = ("Forest", "Crops", "Urban", "Water")


def class_raster(height: int, width: int) -> ClassRaster:
    """Four classes in stripes, 10 m pixels in UTM 33N (where the project's Czech scenes lie)."""
    classes = (np.arange(height * width).reshape(height, width) // 7 % len(NAMES)).astype(np.uint8)
    return ClassRaster(classes, from_origin(500000, 5500000, 10, 10), "EPSG:32633", NAMES)


def test_a_block_that_raises_leaves_the_old_file_and_no_scratch(tmp_path):
    product = tmp_path / "class_shares.json"
    product.write_text('{"old": true}')
    with pytest.raises(RuntimeError, match="renderer failed"), replacing(str(product)) as scratch:
        with open(scratch, "w") as stream:
            stream.write('{"new": ')
        raise RuntimeError("renderer failed")
    assert product.read_text() == '{"old": true}'
    assert os.listdir(tmp_path) == ["class_shares.json"]


def test_a_failed_class_geotiff_save_keeps_the_previous_map(tmp_path):
    path = tmp_path / "land_use_classes.tif"
    ClassGeoTiffDataset(filepath=str(path)).save(class_raster(128, 192))
    before = path.read_bytes()
    # GDAL refuses the block size only once the COG copy has begun (it first clears the target).
    failing = ClassGeoTiffDataset(filepath=str(path), save_args={"BLOCKSIZE": 100})
    with pytest.raises(DatasetError):
        failing.save(class_raster(128, 192))
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["land_use_classes.tif"]


def test_a_failed_binary_save_keeps_the_previous_model(tmp_path):
    path = tmp_path / "featurizer.onnx"
    dataset = BinaryFileDataset(filepath=str(path))
    dataset.save(b"model-1")
    with pytest.raises(DatasetError):
        dataset.save("not bytes")  # type: ignore[arg-type]
    assert dataset.load() == b"model-1"
    assert os.listdir(tmp_path) == ["featurizer.onnx"]


WRITER = """
import sys
import numpy as np
from rasterio.transform import from_origin
from aerial_kedro.datasets import ClassGeoTiffDataset
from aerial_kedro.geo.class_map import ClassRaster
blocks = np.random.default_rng(0).integers(0, 4, (375, 375), dtype=np.uint8)
classes = np.repeat(np.repeat(blocks, 8, 0), 8, 1)  # 3000 x 3000 px: a second or two of GDAL
raster = ClassRaster(classes, from_origin(500000, 5500000, 10, 10), "EPSG:32633", tuple("ABCD"))
ClassGeoTiffDataset(filepath=sys.argv[1]).save(raster)
"""


def test_a_class_geotiff_write_killed_midway_leaves_the_previous_map(tmp_path):
    path = tmp_path / "land_use_classes.tif"
    ClassGeoTiffDataset(filepath=str(path)).save(class_raster(128, 192))
    before = path.read_bytes()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)])
    deadline = time.monotonic() + 60
    while not [name for name in os.listdir(tmp_path) if ".part" in name]:
        assert writer.poll() is None and time.monotonic() < deadline, "the writer never started"
        time.sleep(0.02)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=10)
    assert path.read_bytes() == before
    with rasterio.open(path) as written:
        assert written.shape == (128, 192)
    # What the killed writer leaves is a hidden scratch file, never the product's name.
    assert all(name.startswith(".land_use_classes.tif.") for name in os.listdir(tmp_path)
               if name != "land_use_classes.tif")  # fmt: skip


def test_a_report_that_fails_to_serialise_keeps_the_previous_report(tmp_path):
    from kedro_datasets.json import JSONDataset as KedroJSONDataset

    from aerial_kedro.datasets import JSONDataset

    previous = {"shares": {"Forest": 0.5}}
    unserialisable = {"shares": {"Forest": 0.6}, "extent": object()}
    ours, theirs = tmp_path / "ours.json", tmp_path / "theirs.json"
    for dataset_type, path in ((JSONDataset, ours), (KedroJSONDataset, theirs)):
        dataset = dataset_type(filepath=str(path))
        dataset.save(previous)
        with pytest.raises(DatasetError):
            dataset.save(unserialisable)
    # kedro-datasets' own JSONDataset leaves a truncated document; ours keeps the previous one.
    truncated = theirs.read_text()
    assert '"Forest": 0.6' in truncated and truncated.rstrip().endswith('"extent":')
    assert JSONDataset(filepath=str(ours)).load() == previous
    assert sorted(os.listdir(tmp_path)) == ["ours.json", "theirs.json"]


def test_json_reports_round_trip_with_save_args_and_new_folders(tmp_path):
    from aerial_kedro.datasets import JSONDataset

    path = tmp_path / "08_reporting" / "scoring" / "class_shares.json"
    dataset = JSONDataset(filepath=str(path), save_args={"indent": 2})
    dataset.save({"Forest": 0.25, "Water": 0.75})
    assert dataset.load() == {"Forest": 0.25, "Water": 0.75}
    assert path.read_text().startswith('{\n  "Forest"')


def _reads_while_saving(path, save, saves: int) -> list[bytes]:
    """Everything a reader polling ``path`` sees while ``save`` runs ``saves`` times."""
    import threading

    seen: list[bytes] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            try:
                seen.append(path.read_bytes())
            except FileNotFoundError:
                pass

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        for index in range(saves):
            save(index)
    finally:
        done.set()
        reader.join()
    return seen


def test_a_reader_never_sees_a_half_written_map_png(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from aerial_kedro.datasets import MatplotlibDataset

    path = tmp_path / "land_use_map.png"
    dataset = MatplotlibDataset(filepath=str(path), save_args={"dpi": 100})

    def save(index: int) -> None:
        figure, axes = plt.subplots(figsize=(6, 4))
        axes.imshow(np.random.default_rng(index).random((200, 300)))
        dataset.save(figure)

    seen = _reads_while_saving(path, save, saves=15)
    assert seen, "the reader never ran"
    assert all(image.startswith(b"\x89PNG") and image.endswith(b"IEND\xaeB`\x82") for image in seen)
    assert os.listdir(tmp_path) == ["land_use_map.png"]


def test_a_reader_never_sees_a_half_written_csv(tmp_path):
    import pandas as pd

    from aerial_kedro.datasets import CSVDataset

    path = tmp_path / "rejected_labels.csv"
    dataset = CSVDataset(filepath=str(path))
    rows = 20_000

    def save(index: int) -> None:
        dataset.save(pd.DataFrame({"label_id": range(rows), "reason": [f"run {index}"] * rows}))

    seen = _reads_while_saving(path, save, saves=8)
    assert seen, "the reader never ran"
    assert {text.count(b"\n") for text in seen} == {rows + 1}
    assert len(dataset.load()) == rows
