"""Build the tile index: stable ids, labels from class folders, seeded stratified sample and split."""

from __future__ import annotations

import logging
from itertools import chain
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from aerial_kedro.class_schemes import check_labels, describe_scheme, resolve_scheme

logger = logging.getLogger(__name__)


def build_tile_index(
    raw_tiles: DataFrame, ingestion: dict, seed: int, class_scheme: str | dict[str, Any] = "eurosat"
) -> DataFrame:
    """One row per tile: ``tile_id`` (``<class>/<file>``), ``uri``, ``label``, ``source_label``, ``split``.

    ``label`` is the class folder mapped through ``class_scheme`` (``source_label`` keeps the
    folder name); the split is stratified by the folder classes, so a coarse class keeps the
    mix of its source classes in both splits.

    ``ingestion.sample_frac`` keeps a stratified, seeded share of every class;
    ``ingestion.test_fraction`` of each class (at least one tile when the class has two) goes to
    ``split = "test"``. Assignment depends only on tile ids and the seed, not on partitioning.
    """
    tiles = label_tiles(list_tile_uris(raw_tiles))
    sampled = stratified_sample(tiles, float(ingestion["sample_frac"]), seed)
    indexed = assign_split(sampled, float(ingestion["test_fraction"]), seed)
    mapped = apply_class_scheme(indexed, resolve_scheme(class_scheme))
    _log_class_counts(mapped)
    return mapped


def describe_class_scheme(class_scheme: str | dict[str, Any]) -> dict[str, Any]:
    """The scheme's name, target classes and mapping, stored beside the trained models."""
    return describe_scheme(class_scheme, resolve_scheme(class_scheme))


def apply_class_scheme(tiles: DataFrame, mapping: dict[str, str]) -> DataFrame:
    """``label`` -> the scheme's target class; the folder name stays as ``source_label``.

    Folder classes the scheme lacks fail the run naming them (the parameter check catches this
    before Spark for local folders; this covers remote tile stores).
    """
    folders = [row["label"] for row in tiles.select("label").distinct().collect()]
    check_labels(folders, mapping, what="tile class folder")
    lookup = F.create_map(*(F.lit(v) for v in chain.from_iterable(mapping.items())))
    return tiles.withColumnRenamed("label", "source_label").withColumn(
        "label", lookup[F.col("source_label")]
    ).select("tile_id", "uri", "label", "source_label", "split")


def list_tile_uris(raw_tiles: DataFrame) -> DataFrame:
    """Every file of the source listing, empty ones included, as a ``uri`` column.

    Spark's file scan silently skips zero-length files, so the index is built from the listing
    (``inputFiles``: paths only, no content) to let empty tiles reach ``rejected_tiles``.
    """
    uris = sorted(normalise_uri(uri) for uri in raw_tiles.inputFiles())
    return raw_tiles.sparkSession.createDataFrame([(uri,) for uri in uris], "uri string")


def normalise_uri(uri: str) -> str:
    """``file:///x`` (listing form) -> ``file:/x`` (the form of binaryFile's ``path`` column)."""
    return "file:/" + uri[len("file:///") :] if uri.startswith("file:///") else uri


def label_tiles(paths: DataFrame) -> DataFrame:
    """Label = the tile's parent folder; ``tile_id`` = ``<label>/<file name>``."""
    parts = F.split(F.col("uri"), "/")
    label = F.element_at(parts, -2)
    file_name = F.element_at(parts, -1)
    return paths.select(
        F.concat_ws("/", label, file_name).alias("tile_id"), "uri", label.alias("label")
    )


def _rank_within_class(seed: int) -> tuple[Column, Column]:
    by_class = Window.partitionBy("label")
    ordered = by_class.orderBy(F.xxhash64("tile_id", F.lit(seed)), "tile_id")
    return F.row_number().over(ordered), F.count(F.lit(1)).over(by_class)


def stratified_sample(tiles: DataFrame, sample_frac: float, seed: int) -> DataFrame:
    """Keep ``ceil(n * sample_frac)`` tiles of every class (``n`` tiles in that class)."""
    if sample_frac >= 1.0:
        return tiles
    rank, class_size = _rank_within_class(seed)
    keep = F.ceil(class_size * F.lit(sample_frac))
    return tiles.withColumn("_rank", rank).withColumn("_keep", keep).where("_rank <= _keep").drop(
        "_rank", "_keep"
    )


def assign_split(tiles: DataFrame, test_fraction: float, seed: int) -> DataFrame:
    """``round(n * test_fraction)`` tiles of every class (at least 1 if n >= 2) become test tiles."""
    rank, class_size = _rank_within_class(seed + 1)
    n_test = F.when(class_size >= 2, F.greatest(F.lit(1), F.round(class_size * F.lit(test_fraction)))).otherwise(0)
    return (
        tiles.withColumn("_rank", rank)
        .withColumn("_n_test", n_test)
        .withColumn("split", F.when(F.col("_rank") <= F.col("_n_test"), "test").otherwise("train"))
        .drop("_rank", "_n_test")
    )


def _log_class_counts(index: DataFrame) -> None:
    counts = index.groupBy("label", "split").count().collect()
    per_class: dict[str, dict[str, int]] = {}
    for row in counts:
        per_class.setdefault(row["label"], {})[row["split"]] = row["count"]
    total = sum(row["count"] for row in counts)
    logger.info("Tile index: %d tiles in %d classes", total, len(per_class))
    for label in sorted(per_class):
        logger.info("  %-22s train %5d  test %5d", label, per_class[label].get("train", 0), per_class[label].get("test", 0))
