"""Featurizer variants: tiles/s of a bare onnxruntime loop and EuroSAT hold-out accuracy of each.

    python benchmarks/featurizer_variants.py                      # full EuroSAT, default variants
    python benchmarks/featurizer_variants.py --limit 3000         # a fast, stratified subset
    python benchmarks/featurizer_variants.py --variants fp32-224,int8-160-s456

Every variant is an EfficientNet-Lite0 built by ``build_featurizer`` with ``featurization.options``
(input size, pooled stages, precision, TTA), exactly as the pipeline builds it. For each one:

* tiles/s: one onnxruntime session with ``--threads`` intra-op threads (2 = the cores of the target
  machine), over every tile, *including* decode (PIL) and resize + normalisation, batches of 64;
  the tile bytes are read into memory first, so disk is not measured.
* accuracy: sklearn LogisticRegression on standardized features, stratified ``--test-fraction``
  hold-out seeded by ``--seed``. A variant that pools stages also reports the head-only accuracy
  (its first 1280 columns are the head features), so one pass gives both columns of issue 11's
  table.

The preprocessing steps are also timed alone (decode, PIL resize, and OpenCV resize when ``cv2``
is importable) so their share of a tile's budget is visible once the network is fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import numpy as np

from aerial_kedro.featurizers.decode import decode_tile
from aerial_kedro.featurizers.efficientnet_graph import FEATURE_DIM
from aerial_kedro.featurizers.preprocess import resize_rgb, to_network_input
from aerial_kedro.featurizers.registry import build_featurizer
from aerial_kedro.featurizers.runner import OnnxFeaturizer
from aerial_kedro.tile_files import is_tile_name

PROJECT_ROOT = Path(__file__).resolve().parents[1]
FULL_EUROSAT_TILES = 27_000
CANDIDATE_DIRS = (
    PROJECT_ROOT / "data" / "01_raw" / "eurosat",
    PROJECT_ROOT.parent / "shared" / "data" / "eurosat",
    PROJECT_ROOT.parent / "shared" / "data" / "eurosat-sample",
)
S456 = [4, 5, 6]

#: name -> featurization.options
VARIANTS: dict[str, dict] = {
    "fp32-224-s456": {"pooled_stages": S456},
    "fp32-160-s456": {"input_size": 160, "pooled_stages": S456},
    "fp32-160-s456-sd56": {"input_size": 160, "pooled_stages": S456, "std_stages": [5, 6]},
    "fp32-160-s456-sd456": {"input_size": 160, "pooled_stages": S456, "std_stages": S456},
    "int8-160-s456-sd56": {"input_size": 160, "pooled_stages": S456, "std_stages": [5, 6], "precision": "int8"},
    "int8-128-s456-sd56": {"input_size": 128, "pooled_stages": S456, "std_stages": [5, 6], "precision": "int8"},
    "fp32-128-s456": {"input_size": 128, "pooled_stages": S456},
    "int8-224-s456": {"pooled_stages": S456, "precision": "int8"},
    "int8-160-s456": {"input_size": 160, "pooled_stages": S456, "precision": "int8"},
    "int8-128-s456": {"input_size": 128, "pooled_stages": S456, "precision": "int8"},
    "int8-160-s456-tta": {"input_size": 160, "pooled_stages": S456, "precision": "int8", "tta": True},
    "fp32-160-s456-tta": {"input_size": 160, "pooled_stages": S456, "tta": True},
    "int8-128-s456-tta": {"input_size": 128, "pooled_stages": S456, "precision": "int8", "tta": True},
    "fp32-160-s3456": {"input_size": 160, "pooled_stages": [3, 4, 5, 6]},
    "int8-160-s3456": {"input_size": 160, "pooled_stages": [3, 4, 5, 6], "precision": "int8"},
}
DEFAULT_VARIANTS = (
    "fp32-224-s456,fp32-160-s456,fp32-160-s456-sd56,fp32-128-s456,int8-160-s456,"
    "int8-160-s456-sd56,int8-128-s456,int8-128-s456-sd56"
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiles", type=Path, default=None, help="folder of class folders")
    parser.add_argument("--limit", type=int, default=None, help="stratified subset of N tiles")
    parser.add_argument("--variants", default=DEFAULT_VARIANTS, help=f"of: {', '.join(VARIANTS)}")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--calibration-tiles", type=int, default=256)
    return parser.parse_args()


def list_tiles(folder: Path) -> list[tuple[Path, str]]:
    """(path, class) for every tile in the class folders, sorted."""
    return [
        (path, cls.name)
        for cls in sorted(p for p in folder.iterdir() if p.is_dir())
        for path in sorted(cls.iterdir())
        if is_tile_name(path.name)
    ]


def pick_dataset(explicit: Path | None) -> tuple[Path, list[tuple[Path, str]]]:
    """The explicit folder, else the first candidate with the full 27,000 tiles, else the largest."""
    if explicit is not None:
        return explicit, list_tiles(explicit)
    found = [(d, list_tiles(d)) for d in CANDIDATE_DIRS if d.is_dir()]
    for folder, tiles in found:
        if len(tiles) == FULL_EUROSAT_TILES:
            return folder, tiles
    return max(found, key=lambda item: len(item[1]))


def stratified_subset(
    tiles: list[tuple[Path, str]], limit: int | None, seed: int
) -> list[tuple[Path, str]]:
    if limit is None or limit >= len(tiles):
        return tiles
    from sklearn.model_selection import train_test_split

    labels = [label for _, label in tiles]
    subset, _ = train_test_split(tiles, train_size=limit, stratify=labels, random_state=seed)
    return sorted(subset)


def time_preprocessing(contents: list[bytes], size: int) -> dict[str, float]:
    """Tiles/s of decode alone, PIL resize alone and (if installed) cv2 resize alone."""
    started = time.perf_counter()
    pixels = [decode_tile(c) for c in contents]
    rates = {"decode (PIL)": len(contents) / (time.perf_counter() - started)}
    started = time.perf_counter()
    for tile in pixels:
        resize_rgb(tile, size)
    rates[f"resize to {size} (PIL bilinear)"] = len(pixels) / (time.perf_counter() - started)
    try:
        import cv2
    except ImportError:
        rates[f"resize to {size} (cv2)"] = float("nan")
    else:
        cv2.setNumThreads(1)
        started = time.perf_counter()
        for tile in pixels:
            cv2.resize(tile, (size, size), interpolation=cv2.INTER_LINEAR)
        rates[f"resize to {size} (cv2)"] = len(pixels) / (time.perf_counter() - started)
    spec_like = type("S", (), {"input_size": size, "mean": (127.0,) * 3, "std": (128.0,) * 3})
    started = time.perf_counter()
    for start in range(0, len(pixels), 64):
        to_network_input(pixels[start : start + 64], spec_like)
    rates[f"resize+normalise to {size} (to_network_input)"] = len(pixels) / (
        time.perf_counter() - started
    )
    return rates


def featurize(featurizer: OnnxFeaturizer, contents: list[bytes], batch_size: int) -> tuple:
    """Features of every tile (decode + resize + network, batch by batch) and tiles/s."""
    featurizer.features([decode_tile(c) for c in contents[:batch_size]], batch_size)  # warm-up
    started, cpu_started = time.perf_counter(), time.process_time()
    chunks = []
    for start in range(0, len(contents), batch_size):
        pixels = [decode_tile(c) for c in contents[start : start + batch_size]]
        chunks.append(featurizer.features(pixels, batch_size))
    elapsed = time.perf_counter() - started
    cpu_ms = 1000 * (time.process_time() - cpu_started) / len(contents)
    return np.concatenate(chunks), len(contents) / elapsed, cpu_ms


def holdout_accuracy(features: np.ndarray, labels: np.ndarray, test_fraction: float, seed: int) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=test_fraction, stratify=labels, random_state=seed
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    model.fit(x_train, y_train)
    return float(model.score(x_test, y_test))


def main() -> None:
    args = parse_args()
    logging.getLogger().setLevel(logging.ERROR)  # onnxruntime.quantization's pre-processing hint
    folder, all_tiles = pick_dataset(args.tiles)
    tiles = stratified_subset(all_tiles, args.limit, args.seed)
    contents = [path.read_bytes() for path, _ in tiles]
    labels = np.array([label for _, label in tiles])
    print(f"data: {folder} ({len(all_tiles)} tiles), using {len(tiles)}; {args.threads} threads")
    print(f"cpu count {os.cpu_count()}, load average {os.getloadavg()[0]:.2f} at start\n")

    print("| preprocessing step | tiles/s (1 thread) |\n|---|---|")
    for size in (224, 160, 128):
        for step, rate in time_preprocessing(contents[:2000], size).items():
            if size != 224 and step.startswith("decode"):
                continue
            print(f"| {step} | {rate:,.0f} |")
    print()

    calibration = {"tiles_dir": str(folder), "seed": args.seed, "count": args.calibration_tiles}
    rows = []
    for name in args.variants.split(","):
        options = dict(VARIANTS[name])
        if options.get("precision") == "int8":
            options["calibration"] = calibration
        started = time.perf_counter()
        onnx_bytes, spec = build_featurizer("efficientnet_lite0", options=options)
        build_s = time.perf_counter() - started
        featurizer = OnnxFeaturizer(onnx_bytes, spec, threads=args.threads)
        features, rate, cpu_ms = featurize(featurizer, contents, args.batch_size)
        accuracy = holdout_accuracy(features, labels, args.test_fraction, args.seed)
        head = (
            holdout_accuracy(features[:, :FEATURE_DIM], labels, args.test_fraction, args.seed)
            if spec.feature_dim > FEATURE_DIM
            else accuracy
        )
        rows.append((name, spec.feature_dim, rate, cpu_ms, head, accuracy, build_s))
        print(f"  {name}: {rate:,.0f} tiles/s, head {head:.4f}, all {accuracy:.4f}", flush=True)

    print(
        f"\n| variant | dim | tiles/s wall, {args.threads} thread(s) | CPU ms/tile "
        "| projected tiles/s, 2 free cores | LR acc head 1280-d | LR acc all | build s |"
        "\n|---|---|---|---|---|---|---|---|"
    )
    for name, dim, rate, cpu_ms, head, accuracy, build_s in rows:
        print(
            f"| {name} | {dim} | {rate:,.0f} | {cpu_ms:.2f} | {2000 / cpu_ms:,.0f} | {head:.4f} "
            f"| {accuracy:.4f} | {build_s:.1f} |"
        )
    print(
        "projected = 2 x 1000 / CPU ms per tile: two one-thread sessions (Spark's layout) on two "
        "idle cores; meaningful with --threads 1 (spinning intra-op threads inflate CPU time)."
    )
    print(f"\nload average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
