"""The rows scoring reads and writes, in one place: plan rows, prediction rows, and the status
every chip or tile ends with. Pure constants (no Spark, no Kedro), so geo/, change/, the datasets
and the pipelines all speak the same vocabulary."""

from __future__ import annotations

# What happened to one item (a chip window or a tile): went through the network, was read but
# mostly nodata, could not be read or decoded, was refused before reading (a repeated or dangling
# tile listing), or has no prediction yet (its chunk has not run).
SCORED, EMPTY, UNREADABLE, REJECTED = "scored", "empty", "unreadable", "rejected"
PENDING = "pending"
ITEM_STATUSES = (SCORED, EMPTY, UNREADABLE, REJECTED)

# Where a chip is: its id, CRS, grid cell and bounds in that CRS (every chip table starts so).
CHIP_PLACE_COLUMNS = ("chip_id", "crs", "row", "col", "minx", "miny", "maxx", "maxy")

# A plan row: one chip of the global chip grid (or one plain tile), the chunk it is scored in,
# its bounds in its CRS and its centre in lon/lat. Each field once, with its Spark SQL type;
# the columns and the schema are derived from it (geo.chip_planning.Chip holds the same fields
# from chip_id on, minus kind and source, which the plan adds).
PLAN_FIELDS = (
    ("seq", "long"),
    ("chunk", "int"),
    ("chip_id", "string"),
    ("kind", "string"),
    ("source", "string"),
    ("sources", "array<string>"),
    ("crs", "string"),
    ("row", "int"),
    ("col", "int"),
    ("minx", "double"),
    ("miny", "double"),
    ("maxx", "double"),
    ("maxy", "double"),
    ("lon", "double"),
    ("lat", "double"),
    ("chip_px", "int"),
    ("resolution", "double"),
)
PLAN_COLUMNS = tuple(name for name, _ in PLAN_FIELDS)
PLAN_SCHEMA = ", ".join(f"{name} {kind}" for name, kind in PLAN_FIELDS)

# Predictions are partitioned by run, then chunk (ChunkedParquetDataset's folders).
RUN_COLUMN = "run_id"
CHUNK_COLUMN = "chunk"

# What ``change`` compares of a scored chip besides its class (aerial_kedro.chips.descriptors):
# its 16 x 16 RGB cell means and cloud shares (uint8 bytes) and the featurizer's texture
# statistics (float16 bytes). The version is part of a scoring run's identity.
DESCRIPTOR_COLUMNS = ("colour_cells", "texture")
DESCRIPTOR_VERSION = 2

# A prediction row, besides the partition columns.
PREDICTION_COLUMNS = (
    *(column for column in PLAN_COLUMNS if column not in ("seq", CHUNK_COLUMN)),
    "status",
    "reason",
    "cloud_fraction",
    "predicted_label",
    "class_index",
    "confidence",
    "probabilities",
    "classes",
    "entropy",
    "model",
    "featurizer",
    *DESCRIPTOR_COLUMNS,
)

# What a map needs of each prediction beside the plan.
MAP_OUTCOME_COLUMNS = ("chip_id", "status", "class_index", "confidence")
