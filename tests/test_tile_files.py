"""One list of tile suffixes: the catalog's Spark glob, folder checks and scoring agree."""

from __future__ import annotations

import re

import yaml
from conftest import PROJECT_ROOT

from aerial_kedro.tile_files import TILE_SUFFIXES, is_tile_name


def test_the_catalog_glob_lists_every_tile_suffix_in_both_cases():
    catalog = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog.yml").read_text())
    glob = catalog["raw_tiles"]["load_args"]["pathGlobFilter"]
    listed = set(re.fullmatch(r"\*\.\{(.*)\}", glob).group(1).split(","))
    bare = {suffix.lstrip(".") for suffix in TILE_SUFFIXES}
    assert listed == bare | {suffix.upper() for suffix in bare}


def test_tile_names_in_any_case_and_nothing_else():
    assert all(is_tile_name(f"a{suffix}") and is_tile_name(f"A{suffix.upper()}") for suffix in TILE_SUFFIXES)
    assert not any(is_tile_name(name) for name in ("notes.txt", "scene.vrt", "jpg", "a.jp2"))
