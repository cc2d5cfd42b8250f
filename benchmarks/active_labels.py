"""Do the chips `sample` proposes for training help more than as many chips picked at random?

    .venv/bin/python benchmarks/active_labels.py [--n 20] [--random 3] [--tiles ../shared/data/eurosat]

A user with a map that misses their scene's winter woods labels a few chips and trains again.
This measures which few: on the Czech scene (2022-03-19) with its 218 reference squares
(../shared/data/labels, west half: cropland 194, forest 16, built 8), everything in one process
with the project's own pipelines (``kedro run`` of `train` and `score`, coarse classes):

1. `train` on the tiles alone, `score` the scene: the map a user starts from.
2. The ``n`` squares `sample`'s training candidates would pick among the labelled ones
   (:func:`aerial_kedro.active_learning.ranked_batch` on the map's confidence and texture
   descriptors, nothing labelled yet), and ``--random`` sets of ``n`` drawn at random (seeded).
3. For each set: `train` again with those squares as reference labels, `score` the scene, and
   count per class how many of the *other* labelled squares the new map gets right (recall).

Prints the recall of forest, built and cropland and the overall agreement per arm, and the
classes each arm picked. Slow: 1 + 1 + random trainings (~2-6 min each on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SCENE = DATA / "rasters" / "czech_s2_tci_20220319.tif"
LABELS = DATA / "labels" / "czech_west_labels.geojson"
PREDICTIONS = ROOT / "data" / "07_model_output" / "scoring" / "predictions"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="squares labelled per arm")
    parser.add_argument("--random", type=int, default=3, help="random arms")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiles", default=str(DATA / "eurosat"), help="tiles_dir for train")
    return parser.parse_args()


# `train` up to the default model (logistic regression) only: the maps are scored with it.
UP_TO = {"train": ["logistic_regression.classifier_model", "class_scheme"]}


def run(pipeline: str, **params: object) -> None:
    from kedro.framework.session import KedroSession

    with KedroSession.create(project_path=ROOT, runtime_params=params) as session:
        session.run(pipeline_names=[pipeline], to_outputs=UP_TO.get(pipeline))


def scored(params: dict[str, object]) -> pd.DataFrame:
    """`score` of the scene with the model `train` just wrote: chip_id, predicted_label,
    confidence, texture of its run."""
    run("score", score_source=str(SCENE), **params)
    shares = json.loads(
        (ROOT / "data/08_reporting/maps" / SCENE.stem / "class_shares.json").read_text()
    )
    frame = pd.read_parquet(
        PREDICTIONS / f"run_id={shares['run_id']}",
        columns=[
            "chip_id",
            "status",
            "predicted_label",
            "confidence",
            "probabilities",
            "colour_cells",
        ],
    )
    return frame[frame["status"] == "scored"].set_index("chip_id")


def labelled_squares() -> pd.DataFrame:
    """chip_id, label, geometry (lon/lat) of the reference squares, on the scoring chip grid."""
    from aerial_kedro.chips.planning import PlanSettings
    from aerial_kedro.geo.label_chips import chips_for_labels
    from aerial_kedro.geo.label_files import read_reference_labels

    labels = read_reference_labels(str(LABELS), "class")
    chips, _ = chips_for_labels(labels, "EPSG:32633", PlanSettings().grid, min_cover=0.5)
    return chips[["chip_id", "label"]].reset_index(drop=True)


def labels_file(chip_ids: list[str], folder: Path, name: str) -> Path:
    """The reference squares of ``chip_ids`` as a GeoJSON a user would hand to `train`."""
    from aerial_kedro.geo.geojson import chips_to_geojson
    from aerial_kedro.geo.grid import chip_bounds

    truth = labelled_squares().set_index("chip_id")
    records = []
    for chip_id in chip_ids:
        _, row, col = chip_id.split("_")
        minx, miny, maxx, maxy = chip_bounds(int(row), int(col), 640.0)
        records.append({"chip_id": chip_id, "crs": "EPSG:32633", "minx": minx, "miny": miny,
                        "maxx": maxx, "maxy": maxy, "class": truth.loc[chip_id, "label"]})  # fmt: skip
    collection = chips_to_geojson(records, with_probabilities=False)
    for feature, record in zip(collection["features"], records, strict=True):
        feature["properties"] = {"class": record["class"]}
    path = folder / f"{name}.geojson"
    path.write_text(json.dumps(collection))
    return path


def recall(predictions: pd.DataFrame, truth: pd.DataFrame, held_out: list[str]) -> dict[str, str]:
    rows = truth.set_index("chip_id").loc[held_out]
    mapped = predictions.reindex(held_out)["predicted_label"]
    out = {}
    for name in ("forest", "built", "cropland"):
        of = rows["label"] == name
        out[name] = f"{int((mapped[of] == name).sum())}/{int(of.sum())}"
    out["agreement"] = f"{(mapped == rows['label']).mean():.3f}"
    return out


def main() -> None:
    args = parse_args()
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
    from kedro.framework.startup import bootstrap_project

    from aerial_kedro.active_learning import (
        candidate_blocks,
        feature_space,
        ranked_batch,
        uncertainty,
    )

    bootstrap_project(ROOT)
    base = {"tiles_dir": args.tiles, "class_scheme": "coarse"}
    truth = labelled_squares()
    ids = truth["chip_id"].tolist()
    run("train", **base)
    start = scored(base).loc[ids]
    # The space `sample` picks in: the map's class probabilities and each chip's colour.
    blocks = candidate_blocks(start["probabilities"], start["colour_cells"])
    features, _ = feature_space(blocks, [np.empty((0, b.shape[1])) for b in blocks])
    picked, _ = ranked_batch(
        features, uncertainty(blocks[0]), np.empty((0, features.shape[1])), args.n
    )
    arms = {"candidates": [ids[i] for i in picked]}
    rng = np.random.default_rng(args.seed)
    for k in range(args.random):
        arms[f"random {k + 1}"] = [ids[i] for i in rng.choice(len(ids), args.n, replace=False)]
    results = {"no labels": recall(start, truth, ids) | {"picked": "-"}}
    with tempfile.TemporaryDirectory() as folder:
        for arm, chosen in arms.items():
            path = labels_file(chosen, Path(folder), arm.replace(" ", "_"))
            params = {**base, "reference_labels": str(path), "reference_rasters": str(SCENE)}
            run("train", **params)
            held_out = [c for c in ids if c not in set(chosen)]
            picked_classes = (
                truth.set_index("chip_id").loc[chosen, "label"].value_counts().to_dict()
            )
            results[arm] = recall(scored(params), truth, held_out) | {"picked": str(picked_classes)}
            print(arm, results[arm], flush=True)
    print(f"\n{args.n} squares labelled per arm; recall on the other labelled squares (right/all):")
    print(pd.DataFrame(results).T.to_string())


if __name__ == "__main__":
    sys.exit(main())
