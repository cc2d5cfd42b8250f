"""Which files are image tiles: one list for training folders, scored folders and the data set-up.

conf/base/catalog.yml's ``raw_tiles`` glob lists the same suffixes (Spark's filter is case
sensitive, so it names both cases); tests/test_tile_files.py holds the two together.
"""

from __future__ import annotations

TILE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")


def is_tile_name(name: str) -> bool:
    """``name`` ends in a tile suffix, in any case."""
    return name.lower().endswith(TILE_SUFFIXES)
