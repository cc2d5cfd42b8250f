"""Change detection on every labelled OSCD pair, and false alarms on the Czech no-change pair.

    .venv/bin/python benchmarks/change_oscd.py [--score appearance] [--params k=v,...] [--out DIR]

Runs the project's own ``change`` pipeline (``kedro run --pipelines=change``) once per pair, in
one process (one SparkSession), with the model ``train`` wrote under data/06_models and the
same parameters for every city: nothing is tuned per city. Each OSCD city is
``change.before=<city>/imgs_1``, ``change.after=<city>/imgs_2``,
``change.reference=<city>/change_labels.tif`` (a chip is changed when >= 10 % of its pixels
are, ``change.reference_min_fraction``); the Czech pair (2022-03-16 hazy and cloudy ->
03-19, three days apart) has no change at all.

Prints per city and pooled: chips compared, changed chips, ROC AUC of ``change_score``,
precision / recall / F1 of ``changed``, the false-alarm rate; the cities' mean AUC over those
with >= 3 changed chips; the Czech pair's flagged share of its clear chips and its cloudy chips.
Scoring runs are reused across invocations (same model and settings = same run id), so a
second invocation with another ``--score`` only recompares. Also prints the pooled sweep of
robust-z thresholds (recall, false alarms, Czech flagged share) and the expected false-alarm rate
the runs report; ``--out DIR`` writes the per-city table (CSV) and every pair's chip table
(``<pair>.parquet``, with ``reference_changed``) and the scoring run ids (``runs.json``) for
probes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OSCD = DATA / "oscd"
CZECH = (
    DATA / "rasters" / "czech_s2_tci_20220316_cloudy.tif",
    DATA / "rasters" / "czech_s2_tci_20220319.tif",
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--score", default=None, help="change.score (default: the project's)")
    parser.add_argument("--params", default="", help="extra k=v,... runtime parameters")
    parser.add_argument("--env", default="local")
    parser.add_argument("--out", type=Path, default=None, help="write the per-city table (CSV)")
    return parser.parse_args()


def extra_params(text: str) -> dict[str, object]:
    """``k=v,...`` with each value read as YAML (numbers, true/false, null), as ``kedro run
    --params`` reads them: the parameter models are strict and refuse ``"0.5"`` for a number."""
    import yaml

    pairs = [item.split("=", 1) for item in text.split(",") if item]
    return {key: yaml.safe_load(value) for key, value in pairs}


def nested(dotted: dict[str, object]) -> dict[str, object]:
    """``{"a.b": v}`` -> ``{"a": {"b": v}}``, as ``kedro run --params`` reads dotted keys."""
    out: dict[str, object] = {}
    for key, value in dotted.items():
        *parents, leaf = key.split(".")
        node = out
        for parent in parents:
            node = node.setdefault(parent, {})  # type: ignore[assignment]
        node[leaf] = value  # type: ignore[index]
    return out


def run_change(before: Path, after: Path, reference: Path | None, params: dict, env: str) -> dict:
    """One ``change`` run; returns its detection metrics and chip table (with the reference's
    ``reference_changed`` per compared chip, as the pipeline's own assessment counts it)."""
    from kedro.framework.session import KedroSession

    runtime = nested(
        {
            "change.before": str(before),
            "change.after": str(after),
            "change.reference": str(reference) if reference else None,
            **params,
        }
    )
    with KedroSession.create(project_path=ROOT, env=env, runtime_params=runtime) as session:
        session.run(pipeline_names=["change"])
    reporting = ROOT / "data" / "08_reporting" / "change"
    metrics = json.loads((reporting / "detection_metrics.json").read_text())
    transitions = json.loads((reporting / "transitions.json").read_text())
    table = pd.read_parquet(ROOT / "data" / "07_model_output" / "change" / "chip_table.parquet")
    if reference:
        table = table.merge(reference_changed(table, reference, after, before), on="chip_id", how="left")
    else:
        table["reference_changed"] = None
    return {"metrics": metrics, "table": table, "transitions": transitions}


def reference_changed(table: pd.DataFrame, reference: Path, after: Path, before: Path) -> pd.DataFrame:
    """``chip_id, reference_fraction, reference_changed`` of the compared chips: the pipeline's
    own reference reading."""
    from aerial_kedro.change.reference import (
        chip_changed_fraction,
        read_reference_mask,
        reference_truth,
    )

    imagery = sorted(str(p) for p in after.glob("*.tif")) + sorted(str(p) for p in before.glob("*.tif"))
    mask = read_reference_mask(str(reference), 2, imagery)
    compared = table[table["status"] == "both_scored"]
    truth = reference_truth(chip_changed_fraction(mask, compared, 64, 10.0), 0.1)
    return truth[["chip_id", "reference_fraction", "reference_changed"]]


def labelled_pairs() -> list[tuple[str, Path, Path, Path]]:
    return [
        (city.name, city / "imgs_1", city / "imgs_2", city / "change_labels.tif")
        for city in sorted(OSCD.iterdir())
        if (city / "change_labels.tif").is_file()
    ]


def _fmt(value: float | None) -> str:
    return "  n/a" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:5.2f}"


def main() -> None:
    args = parse_args()
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(ROOT)
    params = extra_params(args.params)
    if args.score:
        params["change.score"] = args.score
    rows, pooled_truth, pooled_flag, pooled_score = [], [], [], []
    tables: dict[str, pd.DataFrame] = {}
    runs: dict[str, dict[str, str]] = {}
    expected: float | None = None
    started = time.perf_counter()
    for city, before, after, reference in labelled_pairs():
        result = run_change(before, after, reference, params, args.env)
        m = result["metrics"]
        tables[city] = result["table"]
        runs[city] = {d: result["transitions"][d]["run_id"] for d in ("before", "after")}
        expected = result["transitions"].get("expected_false_alarm_rate", expected)
        rows.append(
            {
                "city": city,
                "compared": m["chips"],
                "changed_ref": m["reference_changed"],
                "roc_auc": m["roc_auc"],
                "precision": m["precision"],
                "recall": m["recall"],
                "f1": m["f1"],
                "false_alarms": m["false_alarm_rate"],
            }
        )
        print(
            f"{city:12s} chips {m['chips']:4d} changed {m['reference_changed']:3d}  "
            f"AUC {_fmt(m['roc_auc'])}  P {_fmt(m['precision'])}  R {_fmt(m['recall'])}  "
            f"F1 {_fmt(m['f1'])}  false alarms {_fmt(m['false_alarm_rate'])}",
            flush=True,
        )
        table = result["table"]
        rows_with_truth = table[table["reference_changed"].notna()]
        pooled_truth += list(rows_with_truth["reference_changed"].astype(bool))
        pooled_flag += list(rows_with_truth["changed"].astype(bool))
        pooled_score += list(rows_with_truth["change_score"].astype(float))
    czech_result = run_change(*CZECH, None, params, args.env)
    czech = tables["czech"] = czech_result["table"]
    runs["czech"] = {d: czech_result["transitions"][d]["run_id"] for d in ("before", "after")}
    clear = czech[czech["status"] == "both_scored"]
    cloudy = int((czech["status"] == "cloudy").sum())
    frame = pd.DataFrame(rows)
    with_changes = frame[frame["changed_ref"] >= 3]
    truth = np.asarray(pooled_truth, dtype=bool)
    flag = np.asarray(pooled_flag, dtype=bool)
    from sklearn.metrics import roc_auc_score

    tp, fp = int((flag & truth).sum()), int((flag & ~truth).sum())
    print()
    print(f"score: {params.get('change.score', 'project default')}; {time.perf_counter() - started:.0f} s")
    print(
        f"mean ROC AUC over the {len(with_changes)} cities with >= 3 changed chips: "
        f"{with_changes['roc_auc'].mean():.3f} (min {with_changes['roc_auc'].min():.2f}); "
        f"over all {frame['roc_auc'].notna().sum()} with any: {frame['roc_auc'].mean():.3f}"
    )
    print(
        f"pooled ({len(truth)} chips, {int(truth.sum())} changed): ROC AUC "
        f"{roc_auc_score(truth, pooled_score):.3f}, recall {tp / max(truth.sum(), 1):.2f}, "
        f"precision {tp / max(tp + fp, 1):.2f}, false alarms {fp / max((~truth).sum(), 1):.3f}"
    )
    print(
        f"Czech no-change pair: {int(clear['changed'].sum())} of {len(clear)} clear chips flagged "
        f"({clear['changed'].mean():.3f}); {cloudy} chips reported cloudy"
    )
    if expected is not None:
        print(f"expected false-alarm rate the runs report for the threshold: {expected:.3f}")
    score = np.asarray(pooled_score, dtype=np.float64)
    print("pooled sweep (change_score >= z): z, recall, false alarms, Czech flagged share")
    czech_score = clear["change_score"].to_numpy(dtype=np.float64)
    for z in (1.5, 2.0, 2.25, 2.5, 2.75, 3.0, 3.5):
        over = score >= z
        print(
            f"  {z:4.2f}  {(over & truth).sum() / max(truth.sum(), 1):.2f}  "
            f"{(over & ~truth).sum() / max((~truth).sum(), 1):.3f}  {(czech_score >= z).mean():.3f}"
        )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        frame.to_csv(args.out / "change_oscd.csv", index=False)
        for name, table in tables.items():  # every pair's chip table, for probes
            keep = [c for c in table.columns if not c.startswith("probabilities_")]
            table[keep].to_parquet(args.out / f"{name}.parquet", index=False)
        (args.out / "runs.json").write_text(json.dumps(runs, indent=2))


if __name__ == "__main__":
    sys.exit(main())
