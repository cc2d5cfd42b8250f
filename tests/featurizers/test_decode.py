import io

import numpy as np
import pytest
from PIL import Image

from aerial_kedro.featurizers.decode import TileDecodeError, decode_tile


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def test_real_eurosat_jpeg_decodes_to_64px_rgb(sample_tiles):
    pixels = decode_tile((sample_tiles / "Forest" / "Forest_1.jpg").read_bytes())
    assert pixels.shape == (64, 64, 3)
    assert pixels.dtype == np.uint8
    assert pixels[..., 1].mean() > 20  # a real, non-blank picture


@pytest.mark.parametrize(
    ("image", "fmt"),
    [
        (Image.new("L", (50, 40), 128), "PNG"),
        (Image.new("RGBA", (64, 64), (10, 200, 30, 255)), "PNG"),
        (Image.new("P", (64, 64), 3), "PNG"),
        (Image.new("CMYK", (32, 32), (0, 0, 0, 0)), "TIFF"),
        (Image.new("RGB", (100, 80), (1, 2, 3)), "TIFF"),
    ],
)
def test_odd_but_valid_tiles_become_rgb_uint8(image, fmt):
    pixels = decode_tile(_encode(image, fmt))
    assert pixels.ndim == 3 and pixels.shape[2] == 3
    assert pixels.dtype == np.uint8
    assert pixels.shape[:2] == (image.height, image.width)


def test_16bit_tiff_is_scaled_to_8bit():
    values = np.full((16, 16), 65535, dtype=np.uint16)
    values[0, 0] = 0
    pixels = decode_tile(_encode(Image.fromarray(values), "TIFF"))
    assert pixels.shape == (16, 16, 3)
    assert pixels[1, 1, 0] == 255 and pixels[0, 0, 0] == 0


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "empty"), (b"this is not an image at all", "not an image")],
)
def test_unusable_content_has_a_reason(content, reason):
    with pytest.raises(TileDecodeError, match=reason):
        decode_tile(content)


def test_truncated_jpeg_is_rejected(sample_tiles):
    content = (sample_tiles / "River" / "River_1.jpg").read_bytes()
    with pytest.raises(TileDecodeError, match="corrupt"):
        decode_tile(content[: len(content) // 2])
