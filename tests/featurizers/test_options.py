"""``featurization.options``: a bad value is one line naming its key."""

from __future__ import annotations

import pytest

from aerial_kedro.errors import ParameterError
from aerial_kedro.featurizers.options import (
    DEFAULT_CALIBRATION_TILES,
    CalibrationOptions,
    FeaturizerOptions,
    parse_options,
)
from aerial_kedro.pipelines.featurization.nodes import export_featurizer

LITE0 = "efficientnet_lite0"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"precision": "fp16"}, r"^featurization\.options\.precision: 'fp16' is not allowed"),
        ({"input_size": 8}, r"^featurization\.options\.input_size: 8 is not an integer"),
        ({"input_size": "160"}, r"^featurization\.options\.input_size: '160'"),
        ({"pooled_stages": [4, 8]}, r"^featurization\.options\.pooled_stages: \[4, 8\]"),
        ({"pooled_stages": [4, 4]}, r"^featurization\.options\.pooled_stages: .*repeats"),
        ({"std_stages": [0]}, r"^featurization\.options\.std_stages: \[0\] is not a list of stage numbers"),
        ({"tta": "yes"}, r"^featurization\.options\.tta: 'yes' is not true or false"),
        ({"size": 160}, r"^featurization\.options\.size: unknown option"),
        ({"calibration": {"count": 0}}, r"^featurization\.options\.calibration\.count: 0"),
    ],
)
def test_bad_option_is_one_line_naming_the_key(options: dict, message: str) -> None:
    with pytest.raises(ParameterError, match=message) as excinfo:
        export_featurizer(LITE0, {"options": options})
    assert "\n" not in str(excinfo.value)


def test_parse_options_defaults_and_normalises() -> None:
    assert parse_options(None) == parse_options({}) == FeaturizerOptions()
    options = parse_options({"pooled_stages": [6, 4], "tta": None, "calibration": {"tiles_dir": "t"}})
    assert options.pooled_stages == (4, 6) and options.tta is False
    assert options.calibration == CalibrationOptions("t", 42, DEFAULT_CALIBRATION_TILES)
    with pytest.raises(ValueError, match=r"^x\.precision: 'fp8' is not allowed; allowed: fp32, int8$"):
        parse_options({"precision": "fp8"}, key="x")
