import pytest
from conftest import SAMPLE_TILES

from aerial_kedro.class_schemes import resolve_scheme
from aerial_kedro.errors import ParameterError
from aerial_kedro.pipelines.ingestion.settings import IngestionSettings, check_tiles_dir


def test_settings_take_the_configured_fractions():
    settings = IngestionSettings.from_params({"sample_frac": 1, "test_fraction": 0.25})
    assert (settings.sample_frac, settings.test_fraction) == (1.0, 0.25)


@pytest.mark.parametrize(
    ("ingestion", "message"),
    [
        ({"sample_frac": 0}, "ingestion.sample_frac: 0 is outside (0, 1]"),
        ({"sample_frac": "half"}, "ingestion.sample_frac: 'half' is not a number in (0, 1]"),
        ({"test_fraction": 1}, "ingestion.test_fraction: 1 is outside (0, 1)"),
        ({"test_fraction": True}, "ingestion.test_fraction: 'True' is not a number in (0, 1)"),
    ],
)
def test_a_bad_fraction_is_one_line_naming_its_key(ingestion, message):
    with pytest.raises(ParameterError) as error:
        IngestionSettings.from_params(ingestion)
    assert str(error.value) == message


def test_tiles_dir_must_hold_class_folders_of_the_scheme(tmp_path):
    check_tiles_dir(SAMPLE_TILES, resolve_scheme("eurosat"))
    with pytest.raises(ParameterError, match="^tiles_dir: '.*' has no class sub-folders$"):
        check_tiles_dir(tmp_path, resolve_scheme("eurosat"))
    (tmp_path / "Glacier").mkdir()
    with pytest.raises(ParameterError, match="^class_scheme: tiles_dir class folder .*'Glacier'"):
        check_tiles_dir(tmp_path, resolve_scheme("eurosat"))
    with pytest.raises(ParameterError, match="^tiles_dir: not set"):
        check_tiles_dir(None, resolve_scheme("eurosat"))
