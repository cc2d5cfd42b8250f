"""What to score, in which order and in which chunks: driver-side metadata only, no pixels.

A *plan* is a pandas DataFrame with one row per work item, in a deterministic order:

* ``kind = "chip"``: a chip of the global chip grid (:mod:`aerial_kedro.geo.grid`) covered
  (at least ``1 - max_empty_fraction`` of it) by the union of the source rasters, read on an
  executor from ``sources`` (a mosaic when several; a ``stack:[...]`` source is one file per
  band, :mod:`aerial_kedro.geo.band_stack`);
* ``kind = "tile"``: a plain image file (no georeference), scored whole.

Items are cut into chunks of ``chunk_size`` consecutive items (``chunk = seq // chunk_size``);
chips are sorted by (CRS, row, col), so a chunk is a band of neighbouring chips. The *run id*
names one scoring of one plan by one model (source name + a hash of everything that decides the
results, the radiometric conversion included), so an interrupted run resumes into the same
chunks and another run never mixes in.

:func:`plan_source` is the whole driver-side planning of one source (listing, band stacking,
raster checks, radiometry, chip grid); the train pipeline uses it to cut reference-labelled chips
with exactly the scoring grid and radiometry.
"""

from __future__ import annotations

import hashlib
import math
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import fsspec
import numpy as np
import pandas as pd
import shapely

from aerial_kedro.chip_rows import DESCRIPTOR_COLUMNS, DESCRIPTOR_VERSION, PLAN_COLUMNS
from aerial_kedro.geo.band_stack import (
    check_band_files,
    group_band_files,
    is_stack_uri,
    stack_from_mapping,
)
from aerial_kedro.geo.chip_planning import Chip, plan_chips
from aerial_kedro.geo.grid import ChipGrid
from aerial_kedro.geo.radiometry import AUTO, Radiometry, parse_radiometry, resolve_radiometry
from aerial_kedro.geo.raster_access import is_vrt_file
from aerial_kedro.geo.raster_inspection import RasterMeta, inspect_rasters
from aerial_kedro.geo.relative_radiometry import match_radiometry
from aerial_kedro.tile_files import TILE_SUFFIXES

RASTER_EXTENSIONS = (".tif", ".tiff", ".vrt", ".jp2", ".img")
SOURCE_KINDS = ("auto", "rasters", "tiles")


# --------------------------------------------------------------------------- listing


def _has_extension(path: str, extensions: Sequence[str]) -> bool:
    return path.lower().endswith(tuple(extensions))


def is_gdal_path(source: str) -> bool:
    """GDAL virtual file paths (``/vsiaz/...``, ``/vsicurl/...``) go to rasterio unchanged."""
    return source.startswith("/vsi")


def list_source_files(source: str) -> tuple[str, list[str]]:
    """``(root folder, files)`` of ``source``: itself if a file, else its files recursively, sorted.

    Listing goes through fsspec, so local paths and fsspec URLs work; local paths come back
    absolute and normalised, URLs keep their protocol. GDAL virtual paths are returned as
    they are (a single raster). ``root`` is the folder tile ids are relative to (a file's
    own folder).
    """
    if is_gdal_path(source):
        return posixpath.dirname(source), [source]
    fs, root = fsspec.core.url_to_fs(source)
    if fs.isfile(root):
        files, root = [root], posixpath.dirname(root)
    elif fs.isdir(root):
        files = sorted(fs.find(root))
    else:
        raise FileNotFoundError(f"score_source '{source}' does not exist")
    if "://" in source:
        return fs.unstrip_protocol(root), [fs.unstrip_protocol(path) for path in files]
    # fsspec makes local paths absolute but keeps "..": the same file must get the same path.
    return posixpath.normpath(root), [posixpath.normpath(path) for path in files]


def resolve_source_kind(files: Sequence[str], requested: str) -> str:
    """``rasters`` or ``tiles``; ``auto`` = ``rasters`` when any file has a raster extension."""
    if requested != "auto":
        return requested
    return "rasters" if any(_has_extension(f, RASTER_EXTENSIONS) for f in files) else "tiles"


def split_by_kind(files: Sequence[str], kind: str) -> tuple[list[str], list[dict[str, str]]]:
    """``(files to use, problems)``: image files of the other kind are reported, others ignored.

    Side-car files (``.aux.xml``, ``.ovr``, world files, READMEs) are not images and are
    skipped silently.
    """
    wanted = RASTER_EXTENSIONS if kind == "rasters" else TILE_SUFFIXES
    used = [f for f in files if _has_extension(f, wanted) or is_gdal_path(f)]
    problems = [
        {
            "path": f,
            "reason": "a plain image in a raster source; score tile folders on their own "
            "(or with scoring.source_kind=tiles)",
        }
        for f in files
        if kind == "rasters" and _has_extension(f, TILE_SUFFIXES) and f not in used
    ]
    return used, problems


def refuse_vrt_files(files: Sequence[str]) -> tuple[list[str], list[dict[str, str]]]:
    """``(files, problems)``: ``*.vrt`` files are problems unless ``scoring.allow_vrt`` trusts
    them (a VRT can read any local file or URL; :mod:`aerial_kedro.geo.raster_access`)."""
    refused = [f for f in files if is_vrt_file(f)]
    reason = ("a VRT can read any file or URL, so VRTs are not opened unless trusted with "
              "scoring.allow_vrt=true")  # fmt: skip
    return [f for f in files if not is_vrt_file(f)], [
        {"path": f, "reason": reason} for f in refused
    ]


# --------------------------------------------------------------------------- plans


def _relative_id(path: str, root: str) -> str:
    """Tile id: the path below the source folder (the file name when the source is a file)."""
    root = root.rstrip("/")
    if path.startswith(root + "/"):
        return path[len(root) + 1 :]
    return posixpath.basename(path)


def plan_from_chips(chips: Sequence[Chip], chunk_size: int) -> pd.DataFrame:
    """The plan of planned chips (already sorted by :func:`geo.chip_planning.plan_chips`)."""
    records = [
        {**chip.to_dict(), "kind": "chip", "source": chip.sources[0]} for chip in chips
    ]
    return _numbered(records, chunk_size)


def plan_from_tiles(tiles: Sequence[str], source_root: str, chunk_size: int) -> pd.DataFrame:
    """The plan of plain tiles, sorted by tile id (path below ``source_root``)."""
    records: list[dict[str, Any]] = sorted(
        (
            {
                "chip_id": _relative_id(path, source_root),
                "kind": "tile",
                "source": path,
                "sources": [path],
            }
            for path in tiles
        ),
        key=lambda record: record["chip_id"],
    )
    return _numbered(records, chunk_size)


def _numbered(records: list[dict[str, Any]], chunk_size: int) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records, columns=list(PLAN_COLUMNS[2:]))
    frame.insert(0, "seq", range(len(frame)))
    frame.insert(1, "chunk", assign_chunks(len(frame), chunk_size))
    for column in ("row", "col", "chip_px"):
        frame[column] = frame[column].astype("Int64")
    return frame


def assign_chunks(n_items: int, chunk_size: int) -> list[int]:
    """Chunk number of each of ``n_items`` consecutive items: ``seq // chunk_size``."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return [seq // chunk_size for seq in range(n_items)]


def plan_records(plan: pd.DataFrame) -> list[tuple]:
    """Plan rows as plain Python tuples in :data:`PLAN_COLUMNS` order (missing values = None)."""
    columns = [plan[column].tolist() for column in PLAN_COLUMNS]
    return [tuple(_plain(value) for value in values) for values in zip(*columns, strict=True)]


def _plain(value: Any) -> Any:
    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.ndarray):  # list columns of a plan read back from Parquet
        return value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


# --------------------------------------------------------------------------- run ids and chunks


def source_slug(source: str) -> str:
    """A readable, path-safe name of the source: its file name without extension, or for a
    folder its parent's and its own name (band folders are often called ``imgs_1``, ``B``...)."""
    path = str(source).rstrip("/")
    name = posixpath.basename(path) or "source"
    stem = re.sub(r"\.(tiff?|vrt|jp2|img)$", "", name, flags=re.IGNORECASE)
    parent = posixpath.basename(posixpath.dirname(path))
    if stem == name and "." not in name and parent not in ("", ".", ".."):
        stem = f"{parent}_{name}"
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._-")[:40]
    # Must not look like a number or a date to Spark's partition-type inference.
    return slug if slug[:1].isalpha() else f"src_{slug}"


def run_identity(
    plan: pd.DataFrame,
    settings: PlanSettings,
    model_key: str,
    radiometry: Radiometry | None = None,
) -> str:
    """Hash of everything that decides a run's rows: the items, their chunks, the model, the
    reading, and the resolved radiometric conversion (``auto`` resolved, so a run converting
    differently never resumes into another's chunks).

    Batch sizes, task counts and ``max_chunks`` only change how the work is scheduled and are
    deliberately left out, so a resumed run keeps its id.
    """
    digest = hashlib.sha256()
    # The values as the parameters file spells them (bands a list), so run ids stay stable.
    named = {
        "chip_px": settings.chip_px,
        "resolution": settings.resolution,
        "chunk_size": settings.chunk_size,
        "max_empty_fraction": settings.max_empty_fraction,
        "bands": list(settings.bands),
    }
    for key, value in named.items():
        digest.update(f"{key}={value!r};".encode())
    stride = settings.chip_stride_px
    if stride not in (None, settings.chip_px):  # runs without overlap keep their ids
        digest.update(f"chip_stride_px={stride!r};".encode())
    digest.update(f"model={model_key};".encode())
    # Rows carry the change descriptors since they were added: runs without them are not resumed.
    digest.update(f"descriptors={','.join(DESCRIPTOR_COLUMNS)}/{DESCRIPTOR_VERSION};".encode())
    digest.update(f"radiometry={radiometry.key() if radiometry else None};".encode())
    for chip_id, sources in zip(plan["chip_id"], plan["sources"], strict=True):
        digest.update(f"{chip_id}<{'|'.join(sources)};".encode())
    return digest.hexdigest()


def make_run_id(source: str, identity: str) -> str:
    return f"{source_slug(source)}-{identity[:12]}"


def pending_chunks(n_chunks: int, completed: Iterable[int], max_chunks: int | None) -> list[int]:
    """Chunks still to score, in order, at most ``max_chunks`` of them (None = all)."""
    done = set(completed)
    todo = [chunk for chunk in range(n_chunks) if chunk not in done]
    return todo if max_chunks is None else todo[:max_chunks]


def group_into_jobs(chunks: Sequence[int], chunks_per_job: int) -> list[list[int]]:
    """Consecutive groups of at most ``chunks_per_job`` chunks: one Spark job (and commit) each."""
    if chunks_per_job < 1:
        raise ValueError(f"chunks_per_job must be >= 1, got {chunks_per_job}")
    return [list(chunks[i : i + chunks_per_job]) for i in range(0, len(chunks), chunks_per_job)]


def task_sizes(n_items: int, slots: int, tasks_per_slot: int) -> list[int]:
    """Items per Spark task of a job of ``n_items``, in the order Spark starts them, largest first.

    Factoring (Hummel, Schonberg & Flynn, CACM 1992): each round gives every slot one task of
    half the items left, the last round shares the rest equally. Chips do not all cost the same
    (one quarter of a scene ran ~15 % cheaper per chip than another), and a slot may share its core
    with other work, so equal tasks leave one slot idle while the other finishes; with shrinking
    tasks the slots' last ones are short and end close together.
    ``tasks_per_slot`` = rounds: 2 gives four equal quarters on two slots; 4 gives eighths and
    sixteenths at the end. Never an empty task.
    """
    sizes: list[int] = []
    left = max(n_items, 0)
    for round_ in range(tasks_per_slot):
        share = left // (2 * slots)
        if round_ == tasks_per_slot - 1 or share == 0:
            tasks = max(1, min(slots, left))
            return sizes + [left // tasks + int(i >= tasks - left % tasks) for i in range(tasks)]
        sizes += [share] * slots
        left -= share * slots
    return sizes


def usable_rasters(
    metas: Sequence[RasterMeta], bands: Sequence[int], radiometry: str | Radiometry
) -> tuple[list[RasterMeta], list[dict[str, str]], Radiometry | None]:
    """``(usable rasters, problems, resolved radiometry)``: one conversion for the whole run.

    ``auto`` resolves on the first raster that has the wanted bands (8-bit: as it is; 16-bit:
    Sentinel-2 L1C); rasters that would resolve differently are reported, not mixed in. An
    explicit conversion applies to every raster whose pixels it can take.
    """
    usable: list[RasterMeta] = []
    problems: list[dict[str, str]] = []
    resolved: Radiometry | None = None
    for meta in metas:
        wanted = [1, 2, 3] if is_stack_uri(meta.path) else list(bands)
        if max(wanted) > meta.count:
            hint = (
                "; a single band file: put its B04/B03/B02 siblings beside it or set "
                "scoring.band_files {red, green, blue}"
                if meta.count == 1
                else ""
            )
            problems.append(
                {
                    "path": meta.path,
                    "reason": f"has {meta.count} band(s); bands {wanted} wanted{hint}",
                }  # fmt: skip
            )
            continue
        try:
            mine = resolve_radiometry(radiometry, meta.dtype)
        except ValueError as error:
            problems.append({"path": meta.path, "reason": f"has {error}"})
            continue
        if resolved is not None and mine != resolved:
            problems.append(
                {
                    "path": meta.path,
                    "reason": f"has {meta.dtype} pixels (radiometry "
                    f"{mine.name}) while the run's first raster uses {resolved.name}; one "
                    "conversion per run: score it separately or set scoring.radiometry",
                }  # fmt: skip
            )
            continue
        resolved = mine
        usable.append(meta)
    return usable, problems, resolved


RADIOMETRY_MATCH_MODES = ("when_hazier", "always", "never")


@dataclass(frozen=True)
class PlanSettings:
    """How a source is cut into chips and read: the ``scoring`` parameters of the same names.

    The one owner of the planning defaults (a library caller gives only what differs);
    :meth:`aerial_kedro.chips.settings.ScoringSettings.plan` builds it from validated
    parameters. ``radiometry`` is ``"auto"`` (resolved per raster) or a declared conversion;
    ``chip_stride_px`` ``None`` = chips side by side.
    """

    source_kind: str = "auto"
    chip_px: int = 64
    chip_stride_px: int | None = None
    resolution: float = 10.0
    bands: tuple[int, ...] = (1, 2, 3)
    max_empty_fraction: float = 0.5
    chunk_size: int = 512
    radiometry: str | Radiometry = AUTO
    band_files: Mapping[str, str] | None = None
    allow_vrt: bool = False
    max_chips: int = 2_000_000
    radiometry_match: str = "when_hazier"

    @property
    def grid(self) -> ChipGrid:
        """The chip grid chips are planned on (windows every ``chip_stride_px`` if set)."""
        return ChipGrid(self.chip_px, self.resolution, self.chip_stride_px)

    @property
    def tiled_grid(self) -> ChipGrid:
        """The grid of side-by-side chips, whatever the stride (reference labels, assessment)."""
        return ChipGrid(self.chip_px, self.resolution)


def resolve_band_files(band_files: Mapping[str, str], root: str) -> str:
    """The stack of ``{red, green, blue}`` paths; relative paths are below the source folder."""
    resolved = {}
    for colour, path in band_files.items():
        path = str(path)
        relative = "://" not in path and not is_gdal_path(path) and not posixpath.isabs(path)
        resolved[colour] = posixpath.normpath(posixpath.join(root, path)) if relative else path
    return stack_from_mapping(resolved)


def raster_inputs(
    files: Sequence[str], band_files: Mapping[str, str] | None, root: str
) -> list[str]:
    """The rasters to plan: band files stacked (by name, or ``band_files``), others as they are.

    Raises ``ValueError`` (one line naming the files) when a stack's bands differ in size, CRS
    or pixel grid: before any Spark work.
    """
    others: list[str]
    if band_files:
        stacks, others = [resolve_band_files(band_files, root)], []
    else:
        stacks, others = group_band_files(files)
    for uri in stacks:
        check_band_files(uri)
    return [*stacks, *others]


def plan_source(
    source: str, settings: PlanSettings | None = None
) -> tuple[pd.DataFrame, list[dict[str, str]], Radiometry | None]:
    """Plan one source: ``(plan, problems, radiometry)``; driver-side: headers, plus a
    reduced-resolution mask read where a raster declares nodata.

    ``source`` is a raster, a folder of rasters or band files, or a folder of plain tiles (as
    ``score_source``). ``problems`` are the rejected files with a reason; ``radiometry`` is the
    resolved conversion the chips must be read with (``None`` for tiles, decoded to 8-bit RGB
    as the training tiles are, and when no raster is usable). The plan may be empty. Featurize
    it (or any subset of its rows) with :func:`aerial_kedro.chips.inference.featurize_items_spark`,
    passing this ``radiometry``.
    """
    settings = settings or PlanSettings()
    root, files = list_source_files(source)
    kind = "rasters" if settings.band_files else resolve_source_kind(files, settings.source_kind)
    if kind != "rasters":
        used, problems = split_by_kind(files, kind)
        return plan_from_tiles(used, root, settings.chunk_size), problems, None
    used, problems = split_by_kind(files, kind)
    if not settings.allow_vrt:
        used, refused = refuse_vrt_files(used)
        problems += refused
    radiometry = settings.radiometry
    if not isinstance(radiometry, Radiometry):
        radiometry = parse_radiometry(radiometry)
    inputs = raster_inputs(used, settings.band_files, root)
    metas, errors = inspect_rasters(inputs, min_bands=1)
    problems += [{"path": error.path, "reason": error.reason} for error in errors]
    metas, unusable, resolved = usable_rasters(metas, settings.bands, radiometry)
    problems += unusable
    chips = plan_chips(
        metas,
        settings.grid,
        max_empty_fraction=settings.max_empty_fraction,
        max_chips=settings.max_chips,
    )
    return plan_from_chips(chips, settings.chunk_size), problems, resolved


def plan_footprint(plan: pd.DataFrame, crs: str) -> shapely.Geometry:
    """The ground a plan's chips in ``crs`` cover (union of their squares)."""
    in_crs = plan[plan["crs"] == crs]
    return shapely.union_all(
        shapely.box(in_crs["minx"], in_crs["miny"], in_crs["maxx"], in_crs["maxy"])
    )


def matched_radiometry(
    plan: pd.DataFrame, radiometry: Radiometry, reference: str, settings: PlanSettings
) -> tuple[Radiometry, dict[str, Any]]:
    """The plan's conversion matched to the ``reference`` source's pixels over the ground both
    cover (:mod:`aerial_kedro.geo.relative_radiometry`); raises ``ValueError`` naming why not.

    ``settings.radiometry_match``: ``always``; ``when_hazier`` (default) only when the
    source has less contrast than the reference over the common clear ground, so of two dates
    referring to each other only the hazier is adjusted, towards the clearer one the model
    reads best; ``never``. The fit says whether it was ``applied``.
    """
    mode = settings.radiometry_match
    if mode == "never":
        return radiometry, {"applied": False, "mode": mode}
    reference_plan, _, reference_radiometry = plan_source(
        reference, replace(settings, chip_stride_px=None)
    )
    if reference_radiometry is None or reference_plan.empty:
        raise ValueError(f"radiometry_reference '{reference}': no raster to match to")
    crs = str(plan["crs"].value_counts().idxmax())
    area = shapely.intersection(plan_footprint(plan, crs), plan_footprint(reference_plan, crs))
    try:
        matched, fit = match_radiometry(
            sorted({s for sources in plan.loc[plan["crs"] == crs, "sources"] for s in sources}),
            radiometry,
            sorted({s for sources in reference_plan["sources"] for s in sources}),
            reference_radiometry,
            crs,
            area,
            settings.bands,
            settings.resolution,
        )
    except ValueError as error:
        raise ValueError(f"radiometry_reference '{reference}': {error}") from None
    applied = mode == "always" or fit["contrast"] < fit["reference_contrast"]
    return (matched if applied else radiometry), {**fit, "applied": applied, "mode": mode}


def describe_problems(problems: Sequence[Mapping[str, str]]) -> str:
    return "; ".join(f"{p['path']}: {p['reason']}" for p in problems)
