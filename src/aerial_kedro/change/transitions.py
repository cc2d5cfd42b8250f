"""Transition matrix (from -> to, chips and km2) and net change per class of a chip table.

Only ``both_scored`` chips take part: a chip seen on one date, under clouds or unreadable has
no transition. Two matrices are reported, both in the coarse classes:

* ``detected`` - a ``changed`` chip counts at (coarse_before, coarse_after), every other chip on
  the diagonal at its ``coarse_before`` class. Net change per class (gained minus lost area)
  comes from this one, so only detected change moves area between classes;
* ``maps`` - every chip at (coarse_before, coarse_after) as the two maps say, threshold or not.
  Its off-diagonal mass is what a naive map-to-map comparison would call change: the gap
  between the two shows how much of it the change score rejected as noise (season, haze).

``transitions`` lists the changed chips by (from, to), chips and km2; ``X -> X`` is a chip whose
class mix changed enough while its dominant class stayed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pyproj import Geod
from rasterio.crs import CRS

from aerial_kedro.change.table import BOTH_SCORED, status_counts

_GEOD = Geod(ellps="WGS84")


def chip_areas_km2(table: pd.DataFrame) -> np.ndarray:
    """Ground area of each chip (km2) from its bounds in its CRS.

    Projected CRSs: width x height in the CRS's linear unit (metres for UTM; the UTM scale
    factor, < 0.04 %, is ignored). Geographic CRSs: the geodesic area on WGS84.
    """
    areas = np.zeros(len(table), dtype=np.float64)
    if table.empty:
        return areas
    for crs_text, index in table.groupby("crs", sort=False).indices.items():
        part = table.iloc[index]
        crs = CRS.from_user_input(crs_text)
        if crs.is_geographic:
            for n, (minx, miny, maxx, maxy) in zip(
                index, part[["minx", "miny", "maxx", "maxy"]].to_numpy(), strict=True
            ):
                lons, lats = [minx, maxx, maxx, minx], [miny, miny, maxy, maxy]
                areas[n] = abs(_GEOD.polygon_area_perimeter(lons, lats)[0]) / 1e6
        else:
            factor = crs.linear_units_factor[1]
            width = (part["maxx"] - part["minx"]).to_numpy()
            height = (part["maxy"] - part["miny"]).to_numpy()
            areas[index] = width * height * factor**2 / 1e6
    return areas


def _matrix(
    frm: Sequence[str], to: Sequence[str], weights: np.ndarray, classes: Sequence[str]
) -> np.ndarray:
    index = {name: i for i, name in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=np.float64)
    np.add.at(matrix, ([index[f] for f in frm], [index[t] for t in to]), weights)
    return matrix


def _rounded(matrix: np.ndarray, digits: int) -> list[list[float]]:
    return [[round(float(v), digits) for v in row] for row in matrix]


def transition_summary(
    table: pd.DataFrame, classes: Sequence[str], *, digits: int = 4
) -> dict[str, Any]:
    """Transitions, net change and chip counts of a chip table (see the module docstring).

    ``classes`` = the coarse classes in display order; matrix rows are "from", columns "to".
    """
    both = table[table["status"] == BOTH_SCORED]
    area = chip_areas_km2(both)
    before = both["coarse_before"].tolist()
    after = both["coarse_after"].tolist()
    changed = both["changed"].to_numpy(dtype=bool)
    detected_to = np.where(changed, after, before).tolist()
    counts = _matrix(before, detected_to, np.ones(len(both)), classes)
    km2 = _matrix(before, detected_to, area, classes)
    map_counts = _matrix(before, after, np.ones(len(both)), classes)
    map_km2 = _matrix(before, after, area, classes)
    b_changed = [b for b, c in zip(before, changed, strict=True) if c]
    a_changed = [a for a, c in zip(after, changed, strict=True) if c]
    changed_counts = _matrix(b_changed, a_changed, np.ones(len(b_changed)), classes)
    changed_km2 = _matrix(b_changed, a_changed, area[changed], classes)
    transitions = [
        {
            "from": classes[i],
            "to": classes[j],
            "chips": int(changed_counts[i, j]),
            "km2": round(float(changed_km2[i, j]), digits),
        }
        for i in range(len(classes))
        for j in range(len(classes))
        if changed_counts[i, j]
    ]
    return {
        "classes": list(classes),
        "chips": status_counts(table),
        "changed_chips": int(changed.sum()),
        "changed_km2": round(float(area[changed].sum()), digits),
        "compared_km2": round(float(area.sum()), digits),
        "transitions": sorted(transitions, key=lambda t: (-t["chips"], t["from"], t["to"])),
        "detected": {"chips": _rounded(counts, 0), "km2": _rounded(km2, digits)},
        "maps": {"chips": _rounded(map_counts, 0), "km2": _rounded(map_km2, digits)},
        "net_change_km2": {
            name: round(float(km2[:, k].sum() - km2[k, :].sum()), digits)
            for k, name in enumerate(classes)
        },
        "map_difference_km2": {
            name: round(float(map_km2[:, k].sum() - map_km2[k, :].sum()), digits)
            for k, name in enumerate(classes)
        },
    }
