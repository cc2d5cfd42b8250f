"""The change map: one pixel per chip, a transition code per pixel, a colour table and the code
meanings in the tags - written as a :class:`~aerial_kedro.geo.class_map.ClassRaster`, so the
class GeoTIFF writer and dataset of ``score`` serve it unchanged.

Codes, for ``C`` coarse classes (dense, so every code has a name and a colour-table entry):

* ``0 .. C-1`` - compared, not changed: the chip's class after (pale class colour);
* ``C + from * C + to`` - changed from class ``from`` to class ``to`` (the "to" class colour;
  ``from == to`` is a chip whose mix changed while its dominant class stayed);
* then ``cloudy``, ``before only``, ``after only``, ``not scored`` (empty, unreadable or
  pending on a date); 255 = no chip.

Cloudy is white: a pale blue was nearly the pale (unchanged) water; the change PNG adds a grey
hatch. A colour table holds one colour per code, so a transition's entry is its "to" class; the
PNG frames each changed chip in its "from" class as well.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from aerial_kedro.change.table import AFTER_ONLY, BEFORE_ONLY, BOTH_SCORED, CLOUDY
from aerial_kedro.chip_rows import EMPTY, PENDING, UNREADABLE
from aerial_kedro.geo.class_map import NODATA, ClassRaster
from aerial_kedro.geo.grid import grid_transform
from aerial_kedro.geo.palette import class_colors, to_hex, to_rgb

# Colours of the coarse classes (EuroSAT's palette has no names for them).
COARSE_COLORS: dict[str, str] = {
    "forest": "#17702a",
    "cropland": "#e8c547",
    "grassland": "#9be36b",
    "built": "#d62728",
    "water": "#3d9be9",
}
SPECIAL_CODES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("cloudy", "#ffffff", (CLOUDY,)),
    ("before only", "#8a8a8a", (BEFORE_ONLY,)),
    ("after only", "#5a5a5a", (AFTER_ONLY,)),
    ("not scored", "#c8c8c8", (EMPTY, UNREADABLE, PENDING)),
)


def group_colors(groups: Sequence[str]) -> list[str]:
    """A colour per coarse class: :data:`COARSE_COLORS`, else the project palette's choice."""
    fallback = class_colors(list(groups))
    return [COARSE_COLORS.get(g, fallback[i]) for i, g in enumerate(groups)]


def pale(color: str, amount: float = 0.55) -> str:
    """``color`` mixed with ``amount`` of white."""
    r, g, b = to_rgb(color)
    red, green, blue = (round(v + (255 - v) * amount) for v in (r, g, b))
    return to_hex((red, green, blue))


@dataclass(frozen=True)
class ChangeCodes:
    """Names, colours and meanings of the codes of a change map over ``groups``."""

    groups: tuple[str, ...]
    names: tuple[str, ...]
    colors: tuple[str, ...]
    pairs: tuple[tuple[str, str] | None, ...]  # (from, to) of transition codes, else None

    @property
    def n_groups(self) -> int:
        return len(self.groups)

    def stable(self, group: int) -> int:
        return group

    def transition(self, frm: int, to: int) -> int:
        return self.n_groups + frm * self.n_groups + to

    def special(self, name: str) -> int:
        return self.names.index(name)

    def describe(self) -> list[dict[str, Any]]:
        """One entry per code: code, name, kind, from/to (GeoTIFF tag ``change_codes``)."""
        entries = []
        for code, (name, pair) in enumerate(zip(self.names, self.pairs, strict=True)):
            if pair is not None:
                entries.append({"code": code, "name": name, "kind": "changed",
                                "from": pair[0], "to": pair[1]})  # fmt: skip
            elif code < self.n_groups:
                entries.append({"code": code, "name": name, "kind": "unchanged",
                                "from": name, "to": name})  # fmt: skip
            else:
                entries.append({"code": code, "name": name, "kind": "not compared"})
        return entries


def change_codes(groups: Sequence[str], colors: Sequence[str] | None = None) -> ChangeCodes:
    """The code table of a change map over the coarse classes ``groups``."""
    n = len(groups)
    if n + n * n + len(SPECIAL_CODES) > NODATA:
        raise ValueError(f"{n} classes need more transition codes than a uint8 map holds")
    colors = list(colors) if colors is not None else group_colors(groups)
    names = [*groups]
    palette = [pale(c) for c in colors]
    pairs: list[tuple[str, str] | None] = [None] * n
    for frm in groups:
        for j, to in enumerate(groups):
            names.append(f"{frm} -> {to}")
            palette.append(colors[j])
            pairs.append((frm, to))
    for name, color, _ in SPECIAL_CODES:
        names.append(name)
        palette.append(color)
        pairs.append(None)
    return ChangeCodes(tuple(groups), tuple(names), tuple(palette), tuple(pairs))


def chip_codes(table: pd.DataFrame, codes: ChangeCodes) -> np.ndarray:
    """The change code of every chip of a chip table (see the module docstring)."""
    index = {g: i for i, g in enumerate(codes.groups)}
    out = np.full(len(table), NODATA, dtype=np.int64)
    status = table["status"].to_numpy(dtype=object)
    both = status == BOTH_SCORED
    changed = table["changed"].to_numpy(dtype=bool) & both
    frm = np.array([index.get(g, -1) for g in table["coarse_before"]], dtype=np.int64)
    to = np.array([index.get(g, -1) for g in table["coarse_after"]], dtype=np.int64)
    stable = both & ~changed
    out[stable] = to[stable]
    out[changed] = codes.n_groups + frm[changed] * codes.n_groups + to[changed]
    for name, _, statuses in SPECIAL_CODES:
        out[np.isin(status, statuses)] = codes.special(name)
    return out


def change_raster(
    table: pd.DataFrame,
    crs: str,
    chip_size_m: float,
    codes: ChangeCodes,
    tags: Mapping[str, Any] | None = None,
) -> ClassRaster:
    """One pixel per chip of ``crs`` over every chip of the table in that CRS.

    Tags: ``change_codes`` (JSON, :meth:`ChangeCodes.describe`), ``coarse_classes`` and
    ``tags``; the class names and colour table are the codes'.
    """
    part = table[table["crs"] == crs]
    if part.empty:
        raise ValueError(f"no chip in {crs}")
    rows = part["row"].to_numpy(dtype=np.int64)
    cols = part["col"].to_numpy(dtype=np.int64)
    row0, col0 = int(rows.min()), int(cols.min())
    grid = np.full((rows.max() - row0 + 1, cols.max() - col0 + 1), NODATA, dtype=np.uint8)
    grid[rows - row0, cols - col0] = chip_codes(part, codes)
    all_tags = {
        "change_codes": json.dumps(codes.describe()),
        "coarse_classes": json.dumps(list(codes.groups)),
        "chip_size_m": str(chip_size_m),
        **{key: str(value) for key, value in (tags or {}).items()},
    }
    return ClassRaster(
        grid,
        grid_transform(row0, col0, chip_size_m),
        crs,
        codes.names,
        codes.colors,
        all_tags,
    )


def class_grid(
    table: pd.DataFrame, crs: str, column: str, groups: Sequence[str], like: ClassRaster
) -> np.ndarray:
    """A date's coarse classes (``column``) on the grid of ``like`` (255 where not scored)."""
    part = table[(table["crs"] == crs) & table[column].notna()]
    row0 = round(-like.transform.f / like.transform.a)
    col0 = round(like.transform.c / like.transform.a)
    grid = np.full(like.classes.shape, NODATA, dtype=np.uint8)
    index = {g: i for i, g in enumerate(groups)}
    grid[
        part["row"].to_numpy(dtype=np.int64) - row0, part["col"].to_numpy(dtype=np.int64) - col0
    ] = [index[g] for g in part[column]]
    return grid
