"""The ingestion parameters as one typed value: :class:`IngestionSettings`, and the tiles folder check.

``params:ingestion`` becomes a frozen pydantic model; a failure is one
:class:`~aerial_kedro.errors.ParameterError` line naming the key::

    ingestion.test_fraction: 1 is outside (0, 1)

``tiles_dir`` is not a node parameter (the catalog reads it); :func:`check_tiles_dir` checks the
folder a run will list, before Spark starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
)

from aerial_kedro.errors import ParameterError
from aerial_kedro.parameters import Fraction, OpenFraction, validated


class IngestionSettings(BaseModel):
    """Validated ``ingestion`` block; build with :meth:`from_params`."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    sample_frac: Fraction = 1.0
    test_fraction: OpenFraction = 0.2

    @classmethod
    def from_params(cls, ingestion: Mapping[str, Any] | None) -> IngestionSettings:
        """Settings from ``params:ingestion``; raises ParameterError naming the first bad key."""
        return validated(cls, dict(ingestion or {}), key=lambda field: f"ingestion.{field}")


def check_tiles_dir(tiles_dir: Any, mapping: Mapping[str, str]) -> None:
    """A local ``tiles_dir`` must be a folder of class folders, each a class of the scheme.

    Remote stores (``abfs://``, ...) are checked by Spark when it lists them.
    """
    from aerial_kedro.class_schemes import ClassSchemeError, check_labels

    if not tiles_dir:
        raise ParameterError(
            "tiles_dir: not set; pass --params=tiles_dir=PATH (a folder of class folders)"
        )
    if "://" in str(tiles_dir):
        return
    path = Path(str(tiles_dir))
    if not path.is_dir():
        raise ParameterError(
            f"tiles_dir: '{tiles_dir}' is not a folder (expected class sub-folders of tiles)"
        )
    folders = [child.name for child in path.iterdir() if child.is_dir()]
    if not folders:
        raise ParameterError(f"tiles_dir: '{tiles_dir}' has no class sub-folders")
    try:
        check_labels(folders, dict(mapping), what=f"tiles_dir class folder (in '{tiles_dir}')")
    except ClassSchemeError as error:
        raise ParameterError(f"class_scheme: {error}") from None
