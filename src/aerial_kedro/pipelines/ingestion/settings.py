"""The ingestion parameters as one typed value: :class:`IngestionSettings`, and the tiles folder check.

``params:ingestion`` becomes a frozen pydantic model; a failure is one
:class:`~aerial_kedro.errors.ParameterError` line naming the key::

    ingestion.test_fraction: 1 is outside (0, 1)

``tiles_dir`` is not a node parameter (the catalog reads it); :func:`check_tiles_dir` checks the
folder a run will list, before Spark starts, and :func:`check_trainable` that its classes can make
a model: at least two, each with a train and a test tile after ``sample_frac``::

    tiles_dir: 'tiles' holds 1 class folder(s) (Forest: 30 tile(s)); a model needs at least two
    classes, this makes 1 (Forest)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
)

from aerial_kedro.errors import ParameterError
from aerial_kedro.parameters import Fraction, OpenFraction, validated
from aerial_kedro.tile_files import is_tile_name


class IngestionSettings(BaseModel):
    """Validated ``ingestion`` block; build with :meth:`from_params`."""

    model_config = ConfigDict(frozen=True, strict=True, extra="forbid")

    sample_frac: Fraction = 1.0
    test_fraction: OpenFraction = 0.2

    @classmethod
    def from_params(cls, ingestion: Mapping[str, Any] | None) -> IngestionSettings:
        """Settings from ``params:ingestion``; raises ParameterError naming the first bad key."""
        return validated(cls, dict(ingestion or {}), key=lambda field: f"ingestion.{field}")


def check_tiles_dir(tiles_dir: Any, mapping: Mapping[str, str]) -> dict[str, int] | None:
    """A local ``tiles_dir`` must be a folder of class folders, each a class of the scheme;
    returns ``{class folder: tiles in it}`` (:func:`class_folder_counts`).

    Remote stores (``abfs://``, ...) are checked by Spark when it lists them (None).
    """
    counts = class_folder_counts(tiles_dir)
    if counts is not None:
        check_folders_in_scheme(tiles_dir, counts, mapping)
    return counts


def check_folders_in_scheme(tiles_dir: Any, folders: Iterable[str], mapping: Mapping[str, str]) -> None:
    """One ``class_scheme:`` ParameterError line naming the first class folder the scheme lacks."""
    from aerial_kedro.class_schemes import ClassSchemeError, check_labels

    try:
        check_labels(folders, dict(mapping), what=f"tiles_dir class folder (in '{tiles_dir}')")
    except ClassSchemeError as error:
        raise ParameterError(f"class_scheme: {error}") from None


def class_folder_counts(tiles_dir: Any) -> dict[str, int] | None:
    """``{class folder: tile files directly in it}`` of a local ``tiles_dir``; None for a remote
    store. Unset, not a folder or without class sub-folders: one ParameterError line."""
    if not tiles_dir:
        raise ParameterError(
            "tiles_dir: not set; pass --params=tiles_dir=PATH (a folder of class folders)"
        )
    if "://" in str(tiles_dir):
        return None
    path = Path(str(tiles_dir))
    if not path.is_dir():
        raise ParameterError(
            f"tiles_dir: '{tiles_dir}' is not a folder (expected class sub-folders of tiles)"
        )
    counts = {
        child.name: sum(1 for tile in child.iterdir() if is_tile_file(tile))
        for child in sorted(path.iterdir())
        if child.is_dir() and not _hidden(child)
    }
    if not counts:
        raise ParameterError(f"tiles_dir: '{tiles_dir}' has no class sub-folders")
    return counts


def is_tile_file(path: Path) -> bool:
    """A file the tile listing takes (by its name; links are followed, as Spark does)."""
    return is_tile_name(path.name) and not _hidden(path) and path.is_file()


def _hidden(path: Path) -> bool:
    """Names Spark's file listing skips (``.ipynb_checkpoints``, ``_SUCCESS`` ...)."""
    return path.name.startswith((".", "_"))


def split_sizes(n_tiles: int, sample_frac: float, test_fraction: float) -> tuple[int, int]:
    """``(train, test)`` tiles of a class of ``n_tiles`` after the seeded sample and split.

    The same arithmetic as ingestion's Spark columns: ``ceil(n * sample_frac)`` tiles are kept,
    ``round(kept * test_fraction)`` of them (half up, at least one when two are kept) are test tiles.
    """
    kept = n_tiles if sample_frac >= 1.0 else math.ceil(n_tiles * sample_frac)
    if kept < 2:
        return kept, 0
    rounded = Decimal(repr(kept * test_fraction)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    n_test = max(1, int(rounded))
    return kept - n_test, n_test


def fewest_tiles(sample_frac: float, test_fraction: float, limit: int = 1_000_000) -> int:
    """The fewest tiles a class needs for one train and one test tile after the sample."""
    n = 2
    while n < limit and min(split_sizes(n, sample_frac, test_fraction)) < 1:
        n += 1
    return n


def check_trainable(
    tiles_dir: Any,
    counts: Mapping[str, int],
    mapping: Mapping[str, str],
    settings: IngestionSettings,
    reference_classes: Iterable[str] = (),
) -> None:
    """Raise one ParameterError line unless the tiles (and reference label classes, already in
    the scheme's target classes) make a model whose test split holds every class: at least two
    classes, and every class folder keeps a train and a test tile after the sample."""
    classes = sorted({mapping.get(folder, folder) for folder in counts} | set(reference_classes))
    if len(classes) < 2:
        raise ParameterError(
            f"tiles_dir: '{tiles_dir}' {_classes_found(counts, reference_classes)};"
            f" a model needs at least two classes, this makes {len(classes)} ({', '.join(classes)})"
        )
    check_class_sizes(counts, settings, where=f" in '{tiles_dir}'")


def check_class_sizes(
    counts: Mapping[str, int], settings: IngestionSettings, where: str = ""
) -> None:
    """One ParameterError line naming the first class folder left without a train or a test
    tile after the sample and split (``where``: the folder, when known)."""
    for folder, n_tiles in sorted(counts.items()):
        train, test = split_sizes(n_tiles, settings.sample_frac, settings.test_fraction)
        if min(train, test) < 1:
            raise ParameterError(
                f"tiles_dir: class folder '{folder}'{where} has {n_tiles} tile(s), {train} train"
                f" and {test} test after ingestion.sample_frac {settings.sample_frac} and"
                f" ingestion.test_fraction {settings.test_fraction}; each class needs at least"
                f" {fewest_tiles(settings.sample_frac, settings.test_fraction)} tiles"
                " (one train, one test)"
            )


def _classes_found(counts: Mapping[str, int], reference_classes: Iterable[str]) -> str:
    folders = ", ".join(f"{folder}: {n} tile(s)" for folder, n in sorted(counts.items()))
    found = f"holds {len(counts)} class folder(s) ({folders})"
    labelled = sorted(set(reference_classes))
    if labelled:
        found += f" and reference_labels {len(labelled)} class(es) ({', '.join(labelled)})"
    return found
