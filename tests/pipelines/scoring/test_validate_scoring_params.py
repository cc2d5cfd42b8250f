"""The scoring pipeline's first node: one clear line naming a bad parameter."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import CZECH_SCENE as SCENE

from aerial_kedro.errors import ParameterError
from aerial_kedro.pipelines.scoring.nodes import validate_scoring_params

PROJECT = Path(__file__).resolve().parents[3]


@pytest.fixture
def scoring() -> dict:
    """The `scoring` block of conf/base/parameters_scoring.yml, runtime resolvers replaced."""
    params = yaml.safe_load((PROJECT / "conf/base/parameters_scoring.yml").read_text())
    block = dict(params["scoring"])
    block["model"] = "logistic_regression"
    return block


def test_defaults_are_valid(scoring):
    settings = validate_scoring_params(str(SCENE), scoring)
    assert settings.score_source == str(SCENE)
    assert settings.chip_px == 64 and settings.resolution == 10.0
    assert settings.max_chunks is None and settings.chunks_per_job is None
    assert settings.smoothing is True and settings.bands == [1, 2, 3]
    assert settings.radiometry == "auto" and settings.band_files is None


def test_declared_radiometry_is_normalised_to_plain_values(scoring):
    scoring["radiometry"] = "sentinel2_l2a_offset"
    settings = validate_scoring_params(str(SCENE), scoring)
    assert settings.radiometry["name"] == "sentinel2_l2a_offset"
    assert settings.radiometry["offset"] == -0.1
    scoring["radiometry"] = {"scale": 2.75e-5, "offset": -0.2, "min": 0, "max": 0.3}
    custom = validate_scoring_params(str(SCENE), scoring).radiometry
    assert custom["name"] == "custom" and custom["max"] == [0.3, 0.3, 0.3]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("chip_px", 0, "scoring.chip_px: '0' is not an integer >= 1"),
        ("chunk_size", "big", "scoring.chunk_size: 'big' is not an integer >= 1"),
        ("chip_stride_px", 24, "scoring.chip_stride_px: 24 does not divide scoring.chip_px 64"),
        ("chip_stride_px", 0, "scoring.chip_stride_px: '0' is not an integer >= 1"),
        ("max_chunks", 0, "scoring.max_chunks: '0' is not an integer >= 1"),
        ("resolution", -10, "scoring.resolution: '-10' is not a positive number"),
        ("max_empty_fraction", 1.5, "scoring.max_empty_fraction: 1.5 is outside (0, 1]"),
        ("smoothing", "yes", "scoring.smoothing: 'yes' is not true or false"),
        ("source_kind", "images", "scoring.source_kind: 'images' is not allowed"),
        ("bands", [1, 2], "scoring.bands: '[1, 2]' is not three 1-based band numbers"),
        ("model", "", "scoring.model: '' is not a model name"),
        ("radiometry", "landsat9", "scoring.radiometry: 'landsat9' is not a preset; allowed: auto"),
        ("radiometry", {"scale": 1e-4}, "scoring.radiometry: mapping needs min and max"),
        ("band_files", {"red": "r.tif", "green": "g.tif"}, "scoring.band_files: '{'red'"),
    ],
)
def test_bad_values_name_the_key(scoring, key, value, message):
    scoring[key] = value
    with pytest.raises(ParameterError) as error:
        validate_scoring_params(str(SCENE), scoring)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


def test_source_must_exist(scoring, tmp_path):
    with pytest.raises(ParameterError, match="score_source: '.*nowhere.tif' does not exist"):
        validate_scoring_params(str(tmp_path / "nowhere.tif"), scoring)
    with pytest.raises(ParameterError, match="score_source: not set"):
        validate_scoring_params(None, scoring)
    remote = validate_scoring_params("abfs://imagery/scene.tif", scoring)
    assert remote.score_source == "abfs://imagery/scene.tif"  # listed (and checked) later
