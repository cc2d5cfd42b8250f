"""Source imagery read on any grid at reduced resolution: previews and radiometric matching.

A plan source is a raster, or a band stack (``stack:[red, green, blue]``) of single-band
files; both are read here band by band, reprojected (average resampling) onto a target grid,
so two dates or a class map and its imagery line up pixel for pixel.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.warp import reproject

from aerial_kedro.geo.band_stack import group_band_files, is_stack_uri, stack_paths
from aerial_kedro.geo.class_map import ClassRaster
from aerial_kedro.geo.radiometry import Radiometry
from aerial_kedro.geo.radiometry import stretch as radiometry_stretch
from aerial_kedro.geo.raster_access import open_raster


def source_files(source: str) -> list[str]:
    """The files behind one plan source: a band stack's three files, else the source itself."""
    return stack_paths(source) if is_stack_uri(source) else [source]


def rgb_layers(
    paths: Sequence[str], bands: Sequence[int] = (1, 2, 3)
) -> list[list[tuple[str, int]]]:
    """Which (file, band) makes R, G and B, for every raster of a source.

    Multi-band files give ``bands`` each; a band stack of scoring's plan
    (``stack:["<red>", "<green>", "<blue>"]``, :mod:`aerial_kedro.geo.band_stack`) gives band 1
    of its three files; single-band files named ``*_B04``, ``*_B03``, ``*_B02`` are grouped
    into one RGB layer per scene, as scoring groups them
    (:func:`aerial_kedro.geo.band_stack.group_band_files`). Returns one ``[(path, band) x 3]`` per layer
    (mosaicked in order, first wins).
    """
    layers: list[list[tuple[str, int]]] = []
    single_band: list[str] = []
    for path in paths:
        if is_stack_uri(path):
            layers.append([(p, 1) for p in source_files(path)])
            continue
        with open_raster(path) as src:
            count = src.count
        if count >= max(bands):
            layers.append([(path, band) for band in bands])
        elif count == 1:
            single_band.append(path)
    stacks, _ = group_band_files(single_band)  # scoring's own grouping of band files
    layers += [[(p, 1) for p in stack_paths(stack)] for stack in stacks]
    return layers


def read_rgb(
    paths: Sequence[str],
    crs: str,
    transform: Affine,
    shape: tuple[int, int],
    bands: Sequence[int] = (1, 2, 3),
) -> tuple[np.ndarray, str]:
    """``((h, w, 3) float32 pixel values, dtype)`` of a source's rasters on the given grid.

    Values are the rasters' own (digital numbers), averaged onto the grid; NaN = no data.
    Rasters are mosaicked in order, the first wins where they overlap.
    """
    layers = rgb_layers(paths, bands)
    if not layers:
        raise ValueError(f"no RGB imagery among {len(paths)} file(s), e.g. {paths[:1]}")
    out = np.full((3, *shape), np.nan, dtype=np.float32)
    dtype = None
    for layer in layers:
        for channel, (path, band) in enumerate(layer):
            with open_raster(path) as src:
                dtype = dtype or src.dtypes[band - 1]
                data = np.full(shape, np.nan, dtype=np.float32)
                reproject(
                    source=rasterio.band(src, band),
                    destination=data,
                    src_nodata=src.nodata if src.nodata is not None else 0,
                    dst_transform=transform,
                    dst_crs=CRS.from_user_input(crs),
                    dst_nodata=np.nan,
                    resampling=Resampling.average,
                )
            empty = np.isnan(out[channel])
            out[channel][empty] = data[empty]
    return np.moveaxis(out, 0, -1), dtype or "uint8"


def read_preview(
    paths: Sequence[str],
    crs: str,
    transform: Affine,
    shape: tuple[int, int],
    bands: Sequence[int] = (1, 2, 3),
    radiometry: Radiometry | None = None,
) -> np.ndarray:
    """``(h, w, 3)`` float RGB in 0..1 of the source's rasters on the given grid (NaN = none).

    With ``radiometry`` (the scoring run's conversion) the preview shows what the model saw;
    without it, non-8-bit imagery gets a 2-98 % percentile stretch.
    """
    rgb, dtype = read_rgb(paths, crs, transform, shape, bands)
    if radiometry is not None:
        return np.clip(radiometry_stretch(rgb, radiometry) / 255.0, 0.0, 1.0)
    return stretch(rgb, dtype)


def stretch(rgb: np.ndarray, dtype: str, low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """uint8: /255. Other types: per-band ``low``-``high`` percentile stretch to 0..1."""
    out = np.asarray(rgb, dtype=np.float32).copy()
    if dtype == "uint8":
        return np.clip(out / 255.0, 0.0, 1.0)
    for k in range(out.shape[-1]):
        band = out[..., k]
        valid = band[np.isfinite(band)]
        if valid.size:
            lo, hi = np.percentile(valid, [low, high])
            out[..., k] = np.clip((band - lo) / max(hi - lo, 1e-6), 0.0, 1.0)
    return out


def preview_grid(raster: ClassRaster, max_pixels: int = 900) -> tuple[Affine, tuple[int, int]]:
    """A finer grid over the change raster's extent: up to ``max_pixels`` on its long side."""
    rows, cols = raster.classes.shape
    per_chip = max(1, min(64, max_pixels // max(rows, cols, 1)))
    t = raster.transform
    transform = Affine(t.a / per_chip, 0.0, t.c, 0.0, t.e / per_chip, t.f)
    return transform, (rows * per_chip, cols * per_chip)
