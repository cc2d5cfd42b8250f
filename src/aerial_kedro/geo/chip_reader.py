"""Reading a planned chip's pixels on the chip grid: :class:`ChipReader`, one per Spark task.

:class:`ChipReader` reads the chip's ground window from each of the rasters the plan lists as
its sources (:mod:`.chip_planning`) and mosaics them (the first raster listed wins where they
overlap), so a scene split into tiles gives the same chips, pixel for pixel, as the whole
scene. Rasters whose pixel grid is not aligned with the target grid (another resolution, a
shifted origin or another CRS) are read through a ``WarpedVRT`` that resamples them onto it.
Alongside the pixels it returns where they are valid, and :func:`is_empty_chip` tells a chip
(almost) without data from one worth classifying.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import MaskFlags, Resampling
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from aerial_kedro.geo.band_stack import is_stack_uri
from aerial_kedro.geo.chip_planning import Chip
from aerial_kedro.geo.grid import EPS
from aerial_kedro.geo.raster_inspection import RasterError, open_source


def _is_aligned(ds: rasterio.DatasetReader, crs: CRS, res: float) -> bool:
    """Whether the dataset's pixels coincide with the target grid's pixels (plain window reads)."""
    t = ds.transform
    tol = EPS
    return (
        ds.crs == crs
        and t.b == 0
        and t.d == 0
        and abs(t.a - res) <= tol * res
        and abs(t.e + res) <= tol * res
        and abs(t.c / res - round(t.c / res)) <= tol
        and abs(t.f / res - round(t.f / res)) <= tol
    )


def _aligned_vrt(
    ds: rasterio.DatasetReader, crs: CRS, res: float, resampling: Resampling
) -> WarpedVRT:
    """A WarpedVRT of ``ds`` on the target pixel grid (pixel edges at multiples of ``res``)."""
    left, bottom, right, top = transform_bounds(ds.crs, crs, *ds.bounds)
    x0 = math.floor(left / res + EPS) * res
    x1 = math.ceil(right / res - EPS) * res
    y0 = math.floor(bottom / res + EPS) * res
    y1 = math.ceil(top / res - EPS) * res
    kwargs: dict[str, Any] = {}
    if ds.nodata is None:
        kwargs["add_alpha"] = True  # mark pixels outside the source as invalid
    return WarpedVRT(
        ds,
        crs=crs,
        transform=Affine(res, 0.0, x0, 0.0, -res, y1),
        width=round((x1 - x0) / res),
        height=round((y1 - y0) / res),
        resampling=resampling,
        **kwargs,
    )


def _default_resampling(ds: rasterio.DatasetReader, crs: CRS, res: float) -> Resampling:
    """``average`` when the source is finer than the target grid, else ``bilinear``."""
    left, bottom, right, top = transform_bounds(ds.crs, crs, *ds.bounds)
    src_res = min((right - left) / ds.width, (top - bottom) / ds.height)
    return Resampling.average if src_res < res * (1 - EPS) else Resampling.bilinear


class ChipReader:
    """Reads chips' pixels, keeping the sources open between chips (use one per Spark partition).

    ``read(chip)`` returns ``(chip_px, chip_px, bands)`` (height, width, channel - like a
    decoded EuroSAT JPEG) in the sources' dtype (band stacks are always read as R, G, B). Pixels no source covers (or that are
    nodata in every source) are the first source's nodata value, else 0.

    Sources off the target pixel grid are resampled with ``resampling``; by default
    (``None``) ``average`` for finer sources (e.g. 5 m -> 10 m) and ``bilinear`` otherwise.
    Sources on the grid are read as they are, without resampling.
    """

    def __init__(
        self,
        bands: Sequence[int] = (1, 2, 3),
        resampling: Resampling | None = None,
        opener: Callable | None = None,
    ) -> None:
        self.bands = list(bands)
        self.resampling = resampling
        self.opener = opener
        self._datasets: dict[str, rasterio.DatasetReader] = {}
        self._views: dict[tuple[str, str, float], Any] = {}

    def __enter__(self) -> ChipReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for view in self._views.values():
            if isinstance(view, WarpedVRT):
                view.close()
        for ds in self._datasets.values():
            ds.close()
        self._views.clear()
        self._datasets.clear()

    def _view(self, path: str, crs: CRS, res: float) -> Any:
        """The source as a dataset whose pixel grid is the target grid (itself if aligned)."""
        key = (path, crs.to_wkt(), res)
        if key not in self._views:
            if path not in self._datasets:
                try:
                    self._datasets[path] = open_source(path, self.opener)
                except Exception as exc:
                    raise RasterError(path, f"cannot be opened for reading ({exc})") from exc
            ds = self._datasets[path]
            if _is_aligned(ds, crs, res):
                self._views[key] = ds
            else:
                method = self.resampling
                if method is None:  # not `or`: Resampling.nearest is 0
                    method = _default_resampling(ds, crs, res)
                self._views[key] = _aligned_vrt(ds, crs, res, method)
        return self._views[key]

    def read_with_mask(self, chip: Chip) -> tuple[np.ndarray, np.ndarray]:
        """``(pixels HWC, valid HxW bool)``: the mosaic of the chip's sources and where it has data."""
        crs = CRS.from_user_input(chip.crs)
        res, n = chip.resolution, chip.chip_px
        out: np.ndarray | None = None
        filled = np.zeros((n, n), dtype=bool)
        for path in chip.sources:
            view = self._view(path, crs, res)
            t = view.transform
            col_off = round((chip.minx - t.c) / res)
            row_off = round((t.f - chip.maxy) / res)
            c0, r0 = max(col_off, 0), max(row_off, 0)
            c1, r1 = min(col_off + n, view.width), min(row_off + n, view.height)
            if c1 <= c0 or r1 <= r0:
                continue
            window = Window(c0, r0, c1 - c0, r1 - r0)
            try:
                # A band stack is R, G, B by construction; other sources use `bands`.
                bands = [1, 2, 3] if is_stack_uri(path) else self.bands
                data = view.read(bands, window=window)
                if all(MaskFlags.all_valid in flags for flags in view.mask_flag_enums):
                    valid = np.ones(data.shape[1:], dtype=bool)
                else:
                    valid = view.dataset_mask(window=window) > 0
            except Exception as exc:
                raise RasterError(path, f"reading chip {chip.chip_id} failed ({exc})") from exc
            if out is None:
                fill = view.nodata if view.nodata is not None else 0
                out = np.full((len(self.bands), n, n), fill, dtype=data.dtype)
            rows = slice(r0 - row_off, r1 - row_off)
            cols = slice(c0 - col_off, c1 - col_off)
            write = valid & ~filled[rows, cols]
            out[:, rows, cols][:, write] = data[:, write]
            filled[rows, cols] |= valid
            if filled.all():
                break
        if out is None:
            raise ValueError(f"chip {chip.chip_id} has no source overlapping it")
        return np.moveaxis(out, 0, -1), filled

    def read(self, chip: Chip) -> np.ndarray:
        """The chip's pixels, ``(chip_px, chip_px, bands)``."""
        return self.read_with_mask(chip)[0]


def read_chip(
    chip: Chip,
    bands: Sequence[int] = (1, 2, 3),
    resampling: Resampling | None = None,
    opener: Callable | None = None,
) -> np.ndarray:
    """Read one chip (opens and closes its sources; prefer :class:`ChipReader` for many chips)."""
    with ChipReader(bands, resampling, opener) as reader:
        return reader.read(chip)


def read_chips(
    chips: Iterable[Chip],
    bands: Sequence[int] = (1, 2, 3),
    resampling: Resampling | None = None,
    opener: Callable | None = None,
) -> Iterator[tuple[Chip, np.ndarray]]:
    """Yield ``(chip, pixels)`` for each chip, sharing open sources between chips."""
    with ChipReader(bands, resampling, opener) as reader:
        for chip in chips:
            yield chip, reader.read(chip)


def is_empty_chip(
    pixels: np.ndarray,
    nodata: float | None = None,
    max_empty_fraction: float = 0.99,
) -> bool:
    """Whether a chip is (almost) all nodata or black: skip it rather than classify it.

    A pixel (``pixels`` is HWC, or HW for one band) is empty when all its bands are 0 or all
    equal ``nodata``. The chip is empty when more than ``max_empty_fraction`` of it is.
    """
    arr = np.asarray(pixels)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.size == 0:
        return True
    empty = np.all(arr == 0, axis=-1)
    if nodata is not None:
        if isinstance(nodata, float) and math.isnan(nodata):
            empty |= np.all(np.isnan(arr), axis=-1)
        else:
            empty |= np.all(arr == nodata, axis=-1)
    return float(empty.mean()) > max_empty_fraction
