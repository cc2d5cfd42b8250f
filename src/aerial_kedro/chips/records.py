"""What a scoring run hands its later nodes and the pipelines after it, as typed records.

* :class:`ModelDescription` - the trained model pair a run scores with (``scoring.model_info``,
  built by the scoring pipeline's ``describe_model``);
* :class:`ScoringRun` - the planned run: its id, source, what was planned and how the pixels
  are read (``scoring.run``, built by ``plan_scoring``);
* :class:`ChipReading` - how the Spark workers read and featurize a plan's items (score,
  reference and the benchmarks alike; built by :meth:`ScoringSettings.reading`).

The first two travel through the catalog in memory; ``to_dict`` gives the plain dict they replaced (same
keys, values and key order: what reports, the run index and the STAC Item write) and
``from_dict`` reads one back. Readers take the fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from aerial_kedro.geo.radiometry import AUTO, Radiometry

RunKind = Literal["rasters", "tiles"]
RUN_KINDS: tuple[RunKind, ...] = ("rasters", "tiles")


@dataclass(frozen=True)
class ModelDescription:
    """The trained classifier and featurizer a run scores with.

    ``model`` is the classifier's namespace (e.g. ``logistic_regression``), ``model_version``
    the saved version loaded (``None``: unversioned), ``classifier`` the fitted type,
    ``classes`` the order of its probability vectors, ``model_key`` the pair's identity
    (part of the run id).
    """

    model: str
    model_version: str | None
    classifier: str
    classes: tuple[str, ...]
    featurizer: str
    model_key: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "model_version": self.model_version,
            "classifier": self.classifier,
            "classes": list(self.classes),
            "featurizer": self.featurizer,
            "model_key": self.model_key,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelDescription:
        return cls(
            model=str(data["model"]),
            model_version=_optional_str(data.get("model_version")),
            classifier=str(data["classifier"]),
            classes=tuple(str(name) for name in data["classes"]),
            featurizer=str(data["featurizer"]),
            model_key=str(data["model_key"]),
        )


@dataclass(frozen=True)
class ScoringRun:
    """One scoring of one plan by one model.

    ``source`` is redacted of SAS tokens (it is printed and stored), ``source_name`` names the
    folder of its map products. ``kind`` is ``rasters`` (chips on a georeferenced grid) or
    ``tiles`` (plain images, no map). ``radiometry`` is the conversion the chips are read with
    (``None`` for tiles); ``radiometry_fit`` how it was matched to ``radiometry_reference``,
    as :func:`aerial_kedro.chips.planning.matched_radiometry` reports it. ``started_at`` is the
    UTC time planning ran (ISO 8601, seconds), not part of the run's identity.
    """

    run_id: str
    source: str
    source_name: str
    kind: RunKind
    n_items: int
    n_chunks: int
    n_inputs: int
    n_rejected: int
    radiometry: Radiometry | None
    chip_stride_px: int | None
    max_empty_fraction: float
    radiometry_reference: str | None
    radiometry_fit: Mapping[str, Any] | None
    started_at: str

    def __post_init__(self) -> None:
        if self.kind not in RUN_KINDS:
            raise ValueError(f"run kind '{self.kind}' is not one of {', '.join(RUN_KINDS)}")

    @property
    def is_tiles(self) -> bool:
        """Plain images without georeference: no map, no class raster, no STAC Item."""
        return self.kind == "tiles"

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "source": self.source,
            "source_name": self.source_name,
            "kind": self.kind,
            "n_items": self.n_items,
            "n_chunks": self.n_chunks,
            "n_inputs": self.n_inputs,
            "n_rejected": self.n_rejected,
            "radiometry": None if self.radiometry is None else self.radiometry.to_dict(),
            "chip_stride_px": self.chip_stride_px,
            "max_empty_fraction": self.max_empty_fraction,
            "radiometry_reference": self.radiometry_reference,
            "radiometry_fit": None if self.radiometry_fit is None else dict(self.radiometry_fit),
            "started_at": self.started_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScoringRun:
        radiometry, fit = data.get("radiometry"), data.get("radiometry_fit")
        return cls(
            run_id=str(data["run_id"]),
            source=str(data["source"]),
            source_name=str(data["source_name"]),
            kind=cast(RunKind, data["kind"]),  # checked by __post_init__
            n_items=int(data["n_items"]),
            n_chunks=int(data["n_chunks"]),
            n_inputs=int(data["n_inputs"]),
            n_rejected=int(data["n_rejected"]),
            radiometry=Radiometry.from_dict(radiometry) if radiometry else None,
            chip_stride_px=_optional_int(data.get("chip_stride_px")),
            max_empty_fraction=float(data["max_empty_fraction"]),
            radiometry_reference=_optional_str(data.get("radiometry_reference")),
            radiometry_fit=dict(fit) if fit is not None else None,
            started_at=str(data["started_at"]),
        )


@dataclass(frozen=True)
class ChipReading:
    """How every worker task reads its items: ``batch_size`` items per network call,
    ``threads`` per task, chips emptier than ``max_empty_fraction`` skipped, ``bands`` (1-based)
    as RGB, converted to 8 bits by ``radiometry`` (a resolved :class:`Radiometry`, ``"auto"``:
    per chip from its dtype, ``None``: 8-bit sources as they are, others unreadable). With
    ``augment`` each readable chip also yields its 7 other dihedral transforms (training)."""

    batch_size: int
    threads: int
    max_empty_fraction: float
    bands: tuple[int, ...] = (1, 2, 3)
    radiometry: Radiometry | Literal["auto"] | None = None
    augment: bool = False

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.threads < 1:
            raise ValueError(f"batch_size {self.batch_size} and threads {self.threads} must be >= 1")
        if isinstance(self.radiometry, str) and self.radiometry != AUTO:
            raise ValueError(f"radiometry '{self.radiometry}': resolve a preset to a Radiometry first")


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)
