import numpy as np

from aerial_kedro.featurizers.preprocess import resize_rgb, to_network_input
from aerial_kedro.featurizers.spec import FeaturizerSpec

SPEC = FeaturizerSpec(name="t", input_size=8, mean=(127.0, 127.0, 127.0), std=(128.0, 128.0, 128.0), feature_dim=1)


def test_resize_and_normalise_to_nchw():
    tiles = [np.full((4, 4, 3), 255, dtype=np.uint8), np.zeros((6, 6, 3), dtype=np.uint8)]
    tensor = to_network_input(tiles, SPEC)
    assert tensor.shape == (2, 3, 8, 8)
    assert tensor.dtype == np.float32
    np.testing.assert_allclose(tensor[0], 1.0)  # (255 - 127) / 128
    np.testing.assert_allclose(tensor[1], -127 / 128)


def test_channel_order_is_kept():
    tile = np.zeros((8, 8, 3), dtype=np.uint8)
    tile[..., 0] = 255
    tensor = to_network_input([tile], SPEC)
    assert tensor[0, 0].mean() > 0.9 and tensor[0, 2].mean() < -0.9


def test_resize_is_noop_at_input_size():
    tile = np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8)
    assert resize_rgb(tile, 8) is tile


def test_in_place_normalisation_equals_the_textbook_formula(sample_tiles):
    """The preallocated fast path gives exactly (resize(tile) - mean) / std in NCHW."""
    from PIL import Image

    from aerial_kedro.featurizers.decode import decode_tile

    spec = FeaturizerSpec(name="t", input_size=160, mean=(123.675, 116.28, 103.53),
                          std=(58.395, 57.12, 57.375), feature_dim=1)
    paths = sorted(sample_tiles.glob("*/*.jpg"))[::37]
    tiles = [decode_tile(p.read_bytes()) for p in paths]
    expected = np.stack([
        np.asarray(Image.fromarray(t).resize((160, 160), Image.Resampling.BILINEAR), np.float32)
        for t in tiles
    ])
    expected = ((expected - np.float32(spec.mean)) / np.float32(spec.std)).transpose(0, 3, 1, 2)
    got = to_network_input(tiles, spec)
    assert got.flags.c_contiguous and got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
