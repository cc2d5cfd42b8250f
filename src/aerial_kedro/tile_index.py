"""The tile index `train` builds: one row per listed tile with its class folder and split.

Shared by ingestion (which writes it) and the reference pipeline (which adds labelled chips to
the same class scheme).
"""

from __future__ import annotations

from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from aerial_kedro.class_schemes import resolve_training_scheme

# ``split`` of the index rows that tile listing rejected (their ``reason`` is set): they are in
# neither split, and featurization passes them on to ``rejected_tiles`` unread.
EXCLUDED = "excluded"
INDEX_COLUMNS = ("tile_id", "uri", "label", "source_label", "split", "reason")


def index_scheme(class_scheme: str | dict[str, Any], tile_index: DataFrame) -> dict[str, str]:
    """The ``{label: class}`` mapping of a run's scheme over the class folders it indexed
    (the driver sees only the distinct folder names)."""
    folders = [
        row["source_label"]
        for row in tile_index.where(F.col("split") != EXCLUDED).select("source_label").distinct().collect()
    ]
    return resolve_training_scheme(class_scheme, folders)
