"""int8 quantisation: the calibration tiles and what a missing folder says."""

from __future__ import annotations

import pytest
from conftest import SAMPLE_TILES

from aerial_kedro.featurizers.options import CalibrationOptions
from aerial_kedro.featurizers.quantize import calibration_set
from aerial_kedro.featurizers.registry import build_featurizer

LITE0 = "efficientnet_lite0"


def test_calibration_set_depends_on_the_seed() -> None:
    options = CalibrationOptions(str(SAMPLE_TILES), seed=3, count=24)
    first = calibration_set(options)
    assert first.files == calibration_set(options).files
    assert first.files == tuple(sorted(first.files))
    other = calibration_set(CalibrationOptions(str(SAMPLE_TILES), seed=4, count=24))
    assert other.files != first.files and other.sha256 != first.sha256


def test_int8_without_calibration_tiles_names_the_key(tmp_path) -> None:
    options = {"precision": "int8", "calibration": {"tiles_dir": str(tmp_path)}}
    with pytest.raises(ValueError, match=r"calibration\.tiles_dir: no image tiles under"):
        build_featurizer(LITE0, options=options)
