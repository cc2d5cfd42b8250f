import pytest
from conftest import SAMPLE_TILES

from aerial_kedro.class_schemes import resolve_scheme
from aerial_kedro.errors import ParameterError
from aerial_kedro.pipelines.ingestion.settings import (
    IngestionSettings,
    check_tiles_dir,
    check_trainable,
    class_folder_counts,
    fewest_tiles,
    split_sizes,
)


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


def test_check_tiles_dir_returns_the_tiles_of_every_class_folder(tmp_path):
    counts = check_tiles_dir(SAMPLE_TILES, resolve_scheme("eurosat"))
    assert counts is not None and len(counts) == 10 and set(counts.values()) == {30}
    for name in ("a.jpg", "b.PNG", "notes.txt"):
        (tmp_path / "harbor" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "harbor" / name).write_bytes(b"x")
    (tmp_path / "harbor" / ".hidden.jpg").write_bytes(b"x")
    (tmp_path / "airplane").mkdir()
    (tmp_path / ".ipynb_checkpoints").mkdir()  # Spark's listing skips hidden names too
    assert class_folder_counts(tmp_path) == {"airplane": 0, "harbor": 2}
    assert class_folder_counts("wasbs://raw@account.blob.core.windows.net/tiles") is None


@pytest.mark.parametrize(
    ("n", "sample_frac", "test_fraction", "sizes"),
    [
        (30, 1.0, 0.2, (24, 6)),
        (30, 0.5, 0.2, (12, 3)),
        (1, 1.0, 0.2, (1, 0)),
        (2, 1.0, 0.2, (1, 1)),
        (2, 1.0, 0.8, (0, 2)),  # round(1.6) = 2: no training tile left
        (5, 1.0, 0.5, (2, 3)),  # 2.5 rounds half up, as Spark's round
        (3, 0.3, 0.2, (1, 0)),  # ceil(0.9) = 1 tile kept
    ],
)
def test_split_sizes_follow_the_ingestion_arithmetic(n, sample_frac, test_fraction, sizes):
    assert split_sizes(n, sample_frac, test_fraction) == sizes


def test_fewest_tiles_is_the_smallest_class_with_a_train_and_a_test_tile():
    assert fewest_tiles(1.0, 0.2) == 2
    assert fewest_tiles(1.0, 0.8) == 3  # 2 tiles: round(1.6) = 2 test; 3: 2 test, 1 train
    assert fewest_tiles(0.1, 0.2) == 11  # ceil(1.1) = 2 kept
    for sample_frac, test_fraction in ((1.0, 0.8), (0.1, 0.2), (0.25, 0.5)):
        n = fewest_tiles(sample_frac, test_fraction)
        assert min(split_sizes(n, sample_frac, test_fraction)) == 1
        assert min(split_sizes(n - 1, sample_frac, test_fraction)) == 0


SETTINGS = IngestionSettings.from_params({"sample_frac": 1.0, "test_fraction": 0.2})
IDENTITY = {"harbor": "harbor", "airplane": "airplane"}


def test_one_class_is_refused_in_one_line_naming_the_folder_and_its_classes():
    with pytest.raises(ParameterError) as error:
        check_trainable("tiles", {"harbor": 5}, IDENTITY, SETTINGS)
    assert str(error.value) == (
        "tiles_dir: 'tiles' holds 1 class folder(s) (harbor: 5 tile(s)); "
        "a model needs at least two classes, this makes 1 (harbor)"
    )
    # Folders that a scheme merges into one class make one class too.
    with pytest.raises(ParameterError, match="this makes 1 \\(water\\)$"):
        check_trainable("tiles", {"River": 5, "SeaLake": 5}, resolve_scheme("coarse"), SETTINGS)


def test_reference_label_classes_count_towards_the_two_classes():
    check_trainable("tiles", {"Forest": 5}, resolve_scheme("coarse"), SETTINGS, {"cropland"})
    with pytest.raises(ParameterError) as error:
        check_trainable("tiles", {"Forest": 5}, resolve_scheme("coarse"), SETTINGS, {"forest"})
    assert "and reference_labels 1 class(es) (forest); a model needs at least two classes" in str(error.value)


def test_a_class_too_small_for_the_split_is_refused_naming_it():
    check_trainable("tiles", {"harbor": 2, "airplane": 9}, IDENTITY, SETTINGS)
    with pytest.raises(ParameterError) as error:
        check_trainable("tiles", {"harbor": 1, "airplane": 9}, IDENTITY, SETTINGS)
    assert str(error.value) == (
        "tiles_dir: class folder 'harbor' in 'tiles' has 1 tile(s), 1 train and 0 test after "
        "ingestion.sample_frac 1.0 and ingestion.test_fraction 0.2; each class needs at least 2 "
        "tiles (one train, one test)"
    )
    sampled = IngestionSettings.from_params({"sample_frac": 0.1, "test_fraction": 0.2})
    with pytest.raises(ParameterError, match="'airplane' in 'tiles' has 9 tile\\(s\\), 1 train and 0 test .* at least 11 tiles"):
        check_trainable("tiles", {"harbor": 20, "airplane": 9}, IDENTITY, sampled)
