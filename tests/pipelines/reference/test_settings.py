import pytest

from aerial_kedro.errors import ParameterError
from aerial_kedro.pipelines.reference.settings import ReferenceSettings

BLOCK = {"block_chips": 4, "test_fraction": 0.3, "augment": True, "weight": "balanced"}


def _settings(labels="labels.geojson", rasters="scene.tif", field="class", cover=0.5, **changes):
    return ReferenceSettings.from_params(labels, rasters, field, cover, {**BLOCK, **changes})


def test_without_labels_nothing_else_is_required():
    settings = ReferenceSettings.from_params(None, None, None, 0.5, BLOCK)
    assert settings.labels is None and settings.rasters is None


def test_a_number_weight_is_kept():
    assert _settings(weight=20).weight == 20
    assert _settings().weight == "balanced"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rasters": None}, "reference_rasters: not set; reference_labels need the rasters they were drawn over"),
        ({"cover": 0}, "min_cover: 0 is outside (0, 1]"),
        ({"field": " "}, "reference_class_field: ' ' is not a field name"),
        ({"test_fraction": 1.0}, "reference.test_fraction: 1.0 is outside (0, 1)"),
        ({"block_chips": 0}, "reference.block_chips: '0' is not an integer >= 1"),
        ({"augment": "yes"}, "reference.augment: 'yes' is not true or false"),
        ({"weight": "heavy"}, "reference.weight: 'heavy' is not balanced or a positive number"),
        ({"weight": -1}, "reference.weight: '-1' is not balanced or a positive number"),
    ],
)
def test_a_bad_value_is_one_line_naming_its_key(kwargs, message):
    with pytest.raises(ParameterError) as error:
        _settings(**kwargs)
    assert str(error.value) == message
