"""Tile bytes -> RGB uint8 array, with a reason for every tile that cannot be used."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

# Tiles here are 64-px (EuroSAT) to a few hundred px (UC Merced-style aerial): every tile is
# resized to the network's ~224-px input anyway. 4096 x 4096 leaves room for large aerial tiles,
# while one decode stays under ~50 MB; a file declaring more (a decompression bomb: 68 bytes can
# declare 20000 x 20000) is rejected from its header, before any pixel is decoded.
MAX_TILE_PIXELS = 4096 * 4096


class TileDecodeError(ValueError):
    """A tile that cannot be decoded; ``reason`` goes to ``rejected_tiles``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def decode_tile(content: bytes | None) -> np.ndarray:
    """Decode image bytes (JPEG, PNG, TIFF, …) to an ``H x W x 3`` uint8 RGB array.

    Grayscale, palette, RGBA, CMYK and 16-bit images are converted to 8-bit RGB.
    Raises ``TileDecodeError`` for empty, non-image, truncated or oversized content, and for any
    other failure of the decoder: one bad tile is a rejected tile, never a failed run.
    """
    if not content:
        raise TileDecodeError("empty file")
    try:
        with warnings.catch_warnings():
            # PIL warns (and past 2x its own limit raises) on huge images; our cap is lower.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(content)) as image:
                check_size(image.width, image.height)
                image.load()
                return _to_rgb_uint8(image)
    except TileDecodeError:
        raise
    except Image.DecompressionBombError as error:
        raise TileDecodeError(f"image too large ({error})") from None
    except UnidentifiedImageError:
        raise TileDecodeError("not an image (unrecognised format)") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise TileDecodeError(f"corrupt image: {error}") from None
    except Exception as error:  # noqa: BLE001 - a decoder bug on one file must not end the run
        raise TileDecodeError(f"cannot be decoded: {type(error).__name__}: {error}") from None


def check_size(width: int, height: int) -> None:
    """Refuse a tile whose header declares more than :data:`MAX_TILE_PIXELS` pixels."""
    if width * height > MAX_TILE_PIXELS:
        raise TileDecodeError(
            f"image too large: {width}x{height} px (at most {MAX_TILE_PIXELS:,} pixels per tile)"
        )


def _to_rgb_uint8(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return _high_bit_depth_to_rgb(np.asarray(image))
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.asarray(image)


def _high_bit_depth_to_rgb(pixels: np.ndarray) -> np.ndarray:
    """16-bit / float single-band images are scaled linearly by their full integer range."""
    values = pixels.astype(np.float64)
    if pixels.dtype.kind == "f":
        finite = values[np.isfinite(values)]
        top = float(finite.max()) if finite.size else 1.0
        scale = 255.0 / top if top > 0 else 0.0
    else:
        scale = 255.0 / 65535.0
    gray = np.clip(np.nan_to_num(values) * scale, 0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)
