"""Recompare the pairs of a ``change_oscd.py --out`` run with other appearance settings, in seconds.

    .venv/bin/python benchmarks/change_rescore.py --from DIR [--params k=v,...]

``change_oscd.py`` runs the whole ``change`` pipeline per pair (minutes). Its ``--out DIR``
keeps every pair's chip table and scoring run ids; the scoring runs keep each chip's colour
cells and texture features. This script reads those back and recomputes ``change_score`` with
the project's own functions (``aerial_kedro.change.appearance``, the same steps as
``pipelines/change/descriptors.py`` runs over Spark), ``change.appearance`` taken from
conf/base/parameters_change.yml with ``--params`` overrides (``chip_baseline=0.5,...``).
With the settings of the run it must give the run's own scores: it prints the largest
difference (0 when the settings match). It then prints what ``change_oscd.py`` prints: per
city ROC AUC, the mean over the cities with >= 3 changed chips, pooled ROC AUC, recall,
precision and false alarms at ``threshold_z``, the Czech no-change pair's flagged share and the
threshold sweep.

What it cannot replay: which chips are compared (cloud tests, ``cloud_neighbours``,
``max_cloud_fraction``) comes from the chip tables as the run wrote them; change those with
``change_oscd.py``. Everything under ``change.appearance`` can be changed here.
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from change_oscd import ROOT, extra_params  # noqa: E402

from aerial_kedro.change.appearance import (  # noqa: E402
    AppearanceCriteria,
    CellReference,
    GridPlaces,
    SceneMoments,
    cloudy_cells,
    colour_change,
    combined_score,
    conditional_colour_change,
    texture_change,
)
from aerial_kedro.chip_rows import DESCRIPTOR_COLUMNS, SCORED  # noqa: E402
from aerial_kedro.chips.descriptors import decode_colour_cells, decode_texture  # noqa: E402
from aerial_kedro.pipelines.change.settings import AppearanceSettings  # noqa: E402

PREDICTIONS = ROOT / "data" / "07_model_output" / "scoring" / "predictions"
SWEEP = (1.5, 2.0, 2.25, 2.5, 2.75, 3.0, 3.5)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="source", type=Path, required=True,
                        help="a change_oscd.py --out folder (runs.json, <pair>.parquet)")  # fmt: skip
    parser.add_argument("--params", default="", help="change.appearance overrides, k=v,...")
    parser.add_argument("--predictions", type=Path, default=PREDICTIONS,
                        help="the scoring predictions dataset the runs wrote")  # fmt: skip
    return parser.parse_args()


def criteria_from(overrides: dict[str, object]) -> AppearanceCriteria:
    """The project's ``change.appearance`` block with ``overrides``, validated as a run would."""
    conf = yaml.safe_load((ROOT / "conf" / "base" / "parameters_change.yml").read_text())
    return AppearanceSettings(**{**conf["change"]["appearance"], **overrides}).criteria()


def descriptors(predictions: Path, run_id: str, chip_ids: list[str]) -> pd.DataFrame:
    colour, texture = DESCRIPTOR_COLUMNS
    frame = pd.read_parquet(
        predictions / f"run_id={run_id}", columns=["chip_id", "status", colour, texture]
    )
    return frame[frame["status"] == SCORED].set_index("chip_id").loc[chip_ids]


def reference_rows(chip_ids: list[str], limit: int) -> np.ndarray:
    """The chips whose cells are the neighbours: all, or those whose CRC-32 falls under the
    share (Spark's ``crc32`` of the id's UTF-8 bytes, as descriptors.py chooses them)."""
    share = limit / max(len(chip_ids), 1)
    if share >= 1:
        return np.ones(len(chip_ids), dtype=bool)
    return np.array([zlib.crc32(c.encode()) < int(share * 2**32) for c in chip_ids])


def rescore(table: pd.DataFrame, runs: dict[str, str], criteria: AppearanceCriteria,
            predictions: Path) -> np.ndarray:  # fmt: skip
    """``change_score`` of the pair's compared chips (``table`` rows with status both_scored)."""
    ids = list(table["chip_id"])
    before = descriptors(predictions, runs["before"], ids)
    after = descriptors(predictions, runs["after"], ids)
    colour, texture = DESCRIPTOR_COLUMNS
    cb, cloudy_b = decode_colour_cells(list(before[colour]), criteria.cloudy_cell)
    ca, cloudy_a = decode_colour_cells(list(after[colour]), criteria.cloudy_cell)
    tb, ta = decode_texture(list(before[texture])), decode_texture(list(after[texture]))
    cloudy = cloudy_cells(cloudy_b, cloudy_a, criteria)
    moments = SceneMoments.of(cb, ca, tb, ta, cloudy)
    args = (criteria.colour_quantile, cloudy, criteria.cell_window, criteria.chip_baseline)
    if criteria.neighbours:
        chosen = reference_rows(ids, criteria.reference_chips)
        reference = CellReference.of([i for i, c in zip(ids, chosen, strict=True) if c],
                                     cb[chosen], ca[chosen], moments, cloudy[chosen])  # fmt: skip
        colour_score = conditional_colour_change(
            ids, cb, ca, moments, reference, criteria.neighbours, *args
        )
    else:
        colour_score = colour_change(cb, ca, moments, *args)
    places = GridPlaces(list(table["crs"]), table["row"].to_numpy(), table["col"].to_numpy())
    return combined_score(colour_score, texture_change(tb, ta, moments), criteria, places)


def main() -> None:
    args = parse_args()
    criteria = criteria_from(extra_params(args.params))
    runs = json.loads((args.source / "runs.json").read_text())
    truth, scores, largest_difference, per_city = [], [], 0.0, {}
    czech: np.ndarray | None = None
    for pair, pair_runs in runs.items():
        table = pd.read_parquet(args.source / f"{pair}.parquet")
        compared = table[table["status"] == "both_scored"].reset_index(drop=True)
        score = rescore(compared, pair_runs, criteria, args.predictions)
        largest_difference = max(
            largest_difference, float(np.abs(score - compared["change_score"]).max())
        )
        if compared["reference_changed"].isna().all():
            czech = score
            continue
        changed = compared["reference_changed"].astype(bool).to_numpy()
        truth.append(changed)
        scores.append(score)
        if changed.sum() >= 3:
            per_city[pair] = roc_auc_score(changed, score)
    y, s = np.concatenate(truth), np.concatenate(scores)
    flagged = s >= criteria.threshold_z
    tp, fp = int((flagged & y).sum()), int((flagged & ~y).sum())
    print(f"criteria: {criteria}")
    print(
        f"largest |score - the run's change_score|: {largest_difference:.2e} (0 = same settings as the run)"
    )
    print("ROC AUC per city with >= 3 changed chips: "
          + ", ".join(f"{c} {a:.2f}" for c, a in per_city.items()))  # fmt: skip
    print(
        f"mean ROC AUC: {np.mean(list(per_city.values())):.3f} (min {min(per_city.values()):.2f})"
    )
    print(
        f"pooled ({len(y)} chips, {int(y.sum())} changed): ROC AUC {roc_auc_score(y, s):.3f}, "
        f"recall {tp / max(y.sum(), 1):.2f}, precision {tp / max(tp + fp, 1):.2f}, "
        f"false alarms {fp / max((~y).sum(), 1):.3f} at threshold_z {criteria.threshold_z}"
    )
    if czech is not None:
        print(
            f"Czech no-change pair: {(czech >= criteria.threshold_z).mean():.3f} of {len(czech)} clear chips flagged"
        )
    print("pooled sweep: z, recall, false alarms, Czech flagged share")
    for z in SWEEP:
        czech_share = float("nan") if czech is None else (czech >= z).mean()
        print(f"  {z:4.2f}  {(s[y] >= z).mean():.2f}  {(s[~y] >= z).mean():.3f}  {czech_share:.3f}")


if __name__ == "__main__":
    sys.exit(main())
