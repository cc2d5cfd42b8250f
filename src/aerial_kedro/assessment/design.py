"""A `sample` design read back by `assess`: the chips drawn, and the labels a user gave them.

`sample` writes, beside a map, ``sample_design.json`` (the strata = chips mapped per class when
the sample was drawn, the chips drawn per stratum, the run and the seed) and
``sample_design.geojson`` (one polygon per drawn chip: ``chip_id``, ``stratum``,
``inclusion_probability`` and an empty ``class``). The user fills ``class`` and hands the file
to `assess` as ``reference_labels``. Labels that carry ``chip_id`` and ``stratum`` are such a
sample (:func:`is_design_table`); :class:`DesignLabels` holds them, :class:`DrawnSample` the
design as recorded, and :func:`check_against_design` refuses, in one line naming the file and
the chip, a chip the design did not draw, a stratum or inclusion probability that disagrees
with it, or a chip labelled twice.

Each labelled chip counts once, by its ``chip_id``: the polygon is not put on the grid again.
A drawn chip whose ``class`` is empty, or whose feature was deleted, is non-response: the
estimates use the labelled chips of its stratum, assuming the unlabelled ones are missing at
random within it. Plain pandas: no Spark, no Kedro.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from aerial_kedro.geo.label_files import class_name

DESIGN_FIELDS = ("chip_id", "stratum")
DESIGN_FILE = "sample_design.json"
# inclusion_probability is written as n_h / N_h in full; an edited file may round it.
_PROBABILITY_TOLERANCE = 1e-6


class SampleDesignError(ValueError):
    """Design labels that do not match their design; the message names the file and the chip."""


@dataclass(frozen=True)
class DrawnSample:
    """The design `sample` recorded: ``strata`` = chips mapped per class (N_h) when drawn,
    ``chip_strata`` = the chips drawn (chip id -> stratum), the run they were drawn from."""

    run_id: str
    score_source: str
    seed: int
    strata: dict[str, int]
    chip_strata: dict[str, str]

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any], where: str) -> DrawnSample:
        """The design from ``sample_design.json`` (``where`` names it in errors)."""
        chip_ids = summary.get("chip_ids")
        if not isinstance(chip_ids, Mapping):
            raise SampleDesignError(
                f"{where} does not list the chips it drew (written by an older `sample`); "
                "draw it again with `kedro run --pipelines=sample` (the same seed draws the same "
                "chips, but it rewrites sample_design.geojson: keep your labelled copy)"
            )
        strata = {str(k): int(v) for k, v in summary["strata"].items()}
        drawn = {str(chip): str(stratum) for stratum, ids in chip_ids.items() for chip in ids}
        for stratum, ids in chip_ids.items():
            if len(ids) != summary["n_per_stratum"].get(stratum) or stratum not in strata:
                raise SampleDesignError(
                    f"{where}: stratum '{stratum}' lists {len(ids)} chips but its n_per_stratum "
                    f"is {summary['n_per_stratum'].get(stratum)}: the file was edited"
                )
        return cls(
            run_id=str(summary["run_id"]),
            score_source=str(summary["score_source"]),
            seed=int(summary["seed"]),
            strata=strata,
            chip_strata=drawn,
        )

    @property
    def n_per_stratum(self) -> dict[str, int]:
        counts = dict.fromkeys(self.strata, 0)
        for stratum in self.chip_strata.values():
            counts[stratum] += 1
        return counts

    def inclusion_probability(self, stratum: str) -> float:
        """n_h / N_h: each chip of the stratum had this chance of being drawn."""
        return self.n_per_stratum[stratum] / self.strata[stratum]


@dataclass(frozen=True)
class DesignLabels:
    """The labels of a design's chips read from ``source``: ``chips`` has one row per feature,
    ``chip_id``, ``stratum``, ``label`` (None = left unlabelled) and ``inclusion_probability``
    (NaN when the file has none)."""

    source: str
    chips: pd.DataFrame

    @property
    def labelled(self) -> pd.DataFrame:
        return self.chips[self.chips["label"].notna()]


def is_design_table(columns: Iterable[Any]) -> bool:
    """Labels carrying ``chip_id`` and ``stratum`` are the chips of a `sample` design."""
    return set(DESIGN_FIELDS) <= {str(c) for c in columns}


def design_labels(table: pd.DataFrame, name: str, class_field: str) -> DesignLabels:
    """A design-labels table (:func:`is_design_table`) as :class:`DesignLabels`.

    A feature without a chip id or stratum, or a chip id given twice, is refused naming it;
    an empty or null ``class_field`` means the user left the chip unlabelled.
    """
    if class_field not in table.columns:
        fields = ", ".join(str(c) for c in table.columns if c != "geometry")
        raise SampleDesignError(
            f"reference labels '{name}': class field '{class_field}' does not exist; fields: {fields}"
        )
    for field in DESIGN_FIELDS:
        missing = table.index[table[field].isna()]
        if len(missing):
            raise SampleDesignError(
                f"reference labels '{name}': feature {missing[0]} has no {field} (a sample "
                "design's chips each carry chip_id and stratum)"
            )
    chip_ids = table["chip_id"].astype(str)
    repeated = chip_ids[chip_ids.duplicated()]
    if len(repeated):
        raise SampleDesignError(
            f"reference labels '{name}': chip {repeated.iloc[0]} appears more than once"
        )
    labels = table[class_field].map(_label_or_none)
    probability = (
        pd.to_numeric(table["inclusion_probability"], errors="coerce")
        if "inclusion_probability" in table.columns
        else pd.Series(math.nan, index=table.index)
    )
    chips = pd.DataFrame(
        {
            "chip_id": chip_ids.to_numpy(),
            "stratum": table["stratum"].astype(str).to_numpy(),
            "label": labels.to_numpy(dtype=object),
            "inclusion_probability": probability.to_numpy(dtype=float),
        }
    )
    return DesignLabels(source=name, chips=chips)


def _label_or_none(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = class_name(value)
    return text or None


def check_against_design(labels: DesignLabels, design: DrawnSample, where: str) -> None:
    """Every chip of ``labels`` was drawn by ``design`` (described as ``where``), in the same
    stratum and with the same inclusion probability; else one line naming file and chip."""
    for row in labels.chips.itertuples():
        stratum = design.chip_strata.get(row.chip_id)
        if stratum is None:
            raise SampleDesignError(
                f"reference labels '{labels.source}': chip {row.chip_id} is not a chip of the "
                f"sample design {where} (run {design.run_id}, seed {design.seed})"
            )
        if row.stratum != stratum:
            raise SampleDesignError(
                f"reference labels '{labels.source}': chip {row.chip_id} says stratum "
                f"'{row.stratum}', the sample design {where} drew it in '{stratum}'"
            )
        expected = design.inclusion_probability(stratum)
        given = row.inclusion_probability
        if not math.isnan(given) and not math.isclose(
            given, expected, rel_tol=_PROBABILITY_TOLERANCE
        ):
            raise SampleDesignError(
                f"reference labels '{labels.source}': chip {row.chip_id} says inclusion "
                f"probability {given}, the sample design {where} gives {expected}"
            )


def drawn_chips(labels: DesignLabels, design: DrawnSample) -> pd.DataFrame:
    """One row per chip the design drew: ``chip_id``, ``stratum``, ``label`` (None when the
    user left it unlabelled or removed its feature), sorted by stratum and chip id."""
    given = labels.chips.set_index("chip_id")["label"]
    rows = pd.DataFrame(
        {"chip_id": list(design.chip_strata), "stratum": list(design.chip_strata.values())}
    )
    rows["label"] = rows["chip_id"].map(given).astype(object)
    rows.loc[rows["label"].isna(), "label"] = None
    return rows.sort_values(["stratum", "chip_id"], ignore_index=True)
