"""Build the tile index: stable ids, labels from class folders, seeded stratified sample and split."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from itertools import chain
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from aerial_kedro.class_schemes import (
    FOLDERS,
    check_labels,
    describe_scheme,
    resolve_training_scheme,
)
from aerial_kedro.pipelines.ingestion.settings import (
    IngestionSettings,
    check_class_sizes,
)
from aerial_kedro.tile_files import is_tile_name
from aerial_kedro.tile_index import EXCLUDED, INDEX_COLUMNS, index_scheme

logger = logging.getLogger(__name__)


def build_tile_index(
    raw_tiles: DataFrame,
    ingestion: Mapping[str, Any],
    seed: int,
    class_scheme: str | dict[str, Any] = FOLDERS,
) -> DataFrame:
    """One row per tile: ``tile_id`` (``<class>/<file>``), ``uri``, ``label``, ``source_label``,
    ``split``, ``reason``.

    Local listings are audited first (:func:`audit_listing`): a file reached twice through
    symbolic links is indexed once, and every repeat and every dangling link gets a row with
    ``split = "excluded"`` and its ``reason``, which featurization turns into a
    ``rejected_tiles`` row without reading it. ``reason`` is null for every other row.

    ``label`` is the class folder mapped through ``class_scheme`` (``folders``, the default: the
    folder name itself; ``source_label`` keeps the folder name); the split is stratified by the
    folder classes, so a coarse class keeps the mix of its source classes in both splits.

    ``ingestion.sample_frac`` keeps a stratified, seeded share of every class;
    ``ingestion.test_fraction`` of each class (at least one tile when the class has two) goes to
    ``split = "test"``. Assignment depends only on tile ids and the seed, not on partitioning.
    A class folder that would miss a train or a test tile fails the run in one line
    (:func:`check_class_sizes`; the parameter check catches it before Spark for local folders).
    """
    settings = IngestionSettings.from_params(ingestion)
    spark = raw_tiles.sparkSession
    kept, rejected = audit_listing(sorted(normalise_uri(uri) for uri in raw_tiles.inputFiles()))
    check_class_sizes(folder_counts(kept), settings)
    tiles = label_tiles(spark.createDataFrame([(uri,) for uri in kept], "uri string"))
    sampled = stratified_sample(tiles, settings.sample_frac, seed)
    indexed = assign_split(sampled, settings.test_fraction, seed)
    mapping = resolve_training_scheme(class_scheme, folder_counts(kept))
    mapped = apply_class_scheme(indexed, mapping).withColumn("reason", F.lit(None).cast("string"))
    _log_class_counts(mapped)
    if not rejected:
        return mapped
    for uri, reason in rejected[:20]:
        logger.warning("Tile listing: %s: %s", uri, reason)
    logger.warning("Tile listing: %d path(s) go to rejected_tiles unread", len(rejected))
    excluded = label_tiles(spark.createDataFrame(rejected, "uri string, reason string"))
    return mapped.unionByName(with_lenient_labels(excluded, mapping))


def folder_counts(uris: Iterable[str]) -> dict[str, int]:
    """``{class folder: tiles}`` of listed tile URIs (a tile's class is its parent folder)."""
    counts: dict[str, int] = {}
    for uri in uris:
        folder = uri.rstrip("/").split("/")[-2]
        counts[folder] = counts.get(folder, 0) + 1
    return dict(sorted(counts.items()))


def with_lenient_labels(rows: DataFrame, mapping: dict[str, str]) -> DataFrame:
    """Rejected listing rows in index form: a folder the scheme lacks (a link's own name) gives
    a null ``label`` rather than failing the run."""
    lookup = F.create_map(*(F.lit(v) for v in chain.from_iterable(mapping.items())))
    return rows.select(
        "tile_id",
        "uri",
        lookup[F.col("label")].alias("label"),
        F.col("label").alias("source_label"),
        F.lit(EXCLUDED).alias("split"),
        "reason",
    ).select(*INDEX_COLUMNS)


def audit_listing(uris: Iterable[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """``(uris to index, [(uri, reason)] to reject)`` of a tile listing.

    Spark's listing follows symbolic links, loops included (a link to an ancestor folder made
    10 files into 410 paths), and silently skips links whose target is gone. Local files are
    de-duplicated by real path: the path that *is* the real path (else the shortest) is kept,
    every other one is rejected as a repeat of it; links under the listing's root whose target
    is missing are rejected as dangling. Remote URIs (no symbolic links) pass through as they are.
    """
    kept: list[str] = []
    rejected: list[tuple[str, str]] = []
    by_real_path: dict[str, list[str]] = {}
    local_paths: list[str] = []
    for uri in uris:
        path = local_path(uri)
        if path is None:
            kept.append(uri)
        else:
            local_paths.append(path)
            by_real_path.setdefault(os.path.realpath(path), []).append(uri)
    for real, listed in by_real_path.items():
        first = min(listed, key=lambda uri: (local_path(uri) != real, len(uri), uri))
        kept.append(first)
        rejected += [
            (uri, f"repeat of {first} (the same file reached through a symbolic link)")
            for uri in sorted(listed)
            if uri != first
        ]
    roots = {str(Path(path).parent.parent) for path in local_paths}
    if roots:
        root = os.path.commonpath(sorted(roots))
        rejected += [
            (f"file:{link}", f"dangling symbolic link (its target {os.readlink(link)} is missing)")
            for link in dangling_links(root)
        ]
    return sorted(kept), sorted(rejected)


def local_path(uri: str) -> str | None:
    """The local path of a ``file:`` URI (or a plain path); None for remote URIs."""
    if uri.startswith("file:"):
        return "/" + uri[len("file:") :].lstrip("/")
    return None if "://" in uri else uri


def dangling_links(root: str) -> list[str]:
    """Symbolic links named like tiles under ``root`` whose target does not exist (the walk does
    not follow links, so it ends even when links make loops)."""
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        for name in chain(dirs, files):
            path = os.path.join(folder, name)
            if (
                is_tile_name(name)
                and os.path.islink(path)
                and not os.path.exists(path)
            ):
                found.append(path)
    return sorted(found)


def describe_class_scheme(class_scheme: str | dict[str, Any], tile_index: DataFrame) -> dict[str, Any]:
    """The scheme's name, target classes and mapping, stored beside the trained models
    (``folders``: the class folders of the indexed tiles)."""
    return describe_scheme(class_scheme, index_scheme(class_scheme, tile_index))


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
    Repeats through symbolic links are left out (:func:`audit_listing`).
    """
    kept, _ = audit_listing(sorted(normalise_uri(uri) for uri in raw_tiles.inputFiles()))
    return raw_tiles.sparkSession.createDataFrame([(uri,) for uri in kept], "uri string")


def normalise_uri(uri: str) -> str:
    """``file:///x`` (listing form) -> ``file:/x`` (the form of binaryFile's ``path`` column)."""
    return "file:/" + uri[len("file:///") :] if uri.startswith("file:///") else uri


def label_tiles(paths: DataFrame) -> DataFrame:
    """Label = the tile's parent folder; ``tile_id`` = ``<label>/<file name>``; other columns
    (a rejection ``reason``) are kept."""
    parts = F.split(F.col("uri"), "/")
    label = F.element_at(parts, -2)
    file_name = F.element_at(parts, -1)
    others = [column for column in paths.columns if column not in ("uri", "tile_id", "label")]
    return paths.select(
        F.concat_ws("/", label, file_name).alias("tile_id"), "uri", label.alias("label"), *others
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
