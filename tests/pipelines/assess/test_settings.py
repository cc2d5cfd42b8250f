"""The typed assess settings: what they accept, and that each failure reads as the hand-written
checks they replaced did, word for word: one line naming the key as the user sets it."""

from __future__ import annotations

import pydantic
import pytest

from aerial_kedro.errors import ParameterError
from aerial_kedro.pipelines.assess.nodes import validate_assess_params
from aerial_kedro.pipelines.assess.settings import AssessSettings

GOOD = {"reference_labels": "labels.geojson", "reference_class_field": "class", "min_cover": 0.5}
NOT_SET = (
    "reference_labels: not set; pass --params=reference_labels=PATH (GeoJSON, GeoPackage, "
    "Shapefile or CSV of lon/lat points, local or URL)"
)


def _settings(assess: dict | None = None, **overrides: object) -> AssessSettings:
    params = {**GOOD, **overrides}
    return AssessSettings.from_params(
        params["reference_labels"], params["reference_class_field"], params["min_cover"], assess
    )


def _fails(assess: dict | None = None, **overrides: object) -> str:
    with pytest.raises(ParameterError) as error:
        _settings(assess, **overrides)
    assert "\n" not in str(error.value)
    return str(error.value)


def test_defaults_become_typed_attributes():
    settings = validate_assess_params("labels.geojson", "class", 1, {})
    assert isinstance(settings, AssessSettings)
    assert settings.reference_labels == "labels.geojson" and settings.class_field == "class"
    assert settings.min_cover == 1.0 and isinstance(settings.min_cover, float)
    assert settings.exclude_training_chips is True and settings.class_scheme == "auto"
    assert _settings(None).class_scheme == "auto"  # an empty `assess:` block loads as None
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        settings.min_cover = 0.9  # type: ignore[misc]


def test_the_assess_block_is_taken_as_given():
    mapping = {"AnnualCrop": "cropland", "Forest": "forest"}
    settings = _settings({"exclude_training_chips": False, "class_scheme": mapping})
    assert settings.exclude_training_chips is False and settings.class_scheme == mapping
    assert _settings({"class_scheme": "coarse"}).class_scheme == "coarse"
    assert _settings({"class_scheme": "none"}).class_scheme == "none"


@pytest.mark.parametrize(
    ("assess", "overrides", "message"),
    [
        ({}, {"reference_labels": None}, NOT_SET),
        ({"exclude_trainig_chips": False}, {},
         "assess.exclude_trainig_chips: not a parameter here; did you mean exclude_training_chips?"),
        ({}, {"reference_labels": ""}, NOT_SET),
        ({}, {"reference_labels": 3}, NOT_SET),
        ({}, {"reference_class_field": "  "}, "reference_class_field: '  ' is not a field name"),
        ({}, {"reference_class_field": None}, "reference_class_field: 'None' is not a field name"),
        ({}, {"min_cover": "half"}, "min_cover: 'half' is not a number in (0, 1]"),
        ({}, {"min_cover": True}, "min_cover: 'True' is not a number in (0, 1]"),
        ({}, {"min_cover": None}, "min_cover: 'None' is not a number in (0, 1]"),
        ({}, {"min_cover": 1.5}, "min_cover: 1.5 is outside (0, 1]"),
        ({}, {"min_cover": 0}, "min_cover: 0 is outside (0, 1]"),  # as given, not 0.0
        ({}, {"min_cover": 2}, "min_cover: 2 is outside (0, 1]"),
        ({"exclude_training_chips": "yes"}, {},
         "assess.exclude_training_chips: 'yes' is not true or false"),
        ({"exclude_training_chips": None}, {},
         "assess.exclude_training_chips: 'None' is not true or false"),
        ({"class_scheme": "fine"}, {},
         "assess.class_scheme: 'fine' is not allowed; allowed values: eurosat, coarse or a "
         "mapping {source label: class} (or auto, none)"),
        ({"class_scheme": {"Forest": ""}}, {},
         "assess.class_scheme: label 'Forest' maps to no class name (or auto, none)"),
        ({"class_scheme": None}, {},
         "assess.class_scheme: 'None' is neither a scheme name nor a mapping (or auto, none)"),
    ],
)  # fmt: skip
def test_a_failure_reads_as_before(assess, overrides, message):
    assert _fails(assess, **overrides) == message


def test_the_first_bad_key_in_check_order_is_reported():
    bad_block = {"exclude_training_chips": "yes", "class_scheme": "fine"}
    assert _fails(bad_block, min_cover=3).startswith("min_cover:")
    assert _fails(bad_block, min_cover=3, reference_class_field="").startswith(
        "reference_class_field:"
    )
    assert _fails(bad_block).startswith("assess.exclude_training_chips:")
    assert _fails(bad_block, reference_labels=None) == NOT_SET


def test_the_block_cannot_override_the_top_level_keys():
    # `assess.min_cover` is not the `min_cover` parameter: the top-level value is checked.
    assert _settings({"min_cover": 7}).min_cover == 0.5
