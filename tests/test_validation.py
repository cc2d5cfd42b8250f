import subprocess
import sys

import pytest
from conftest import PROJECT_ROOT, SAMPLE_TILES, copy_tiles_as

from aerial_kedro.errors import ParameterError
from aerial_kedro.validation import validate_run


def _params(**overrides):
    params = {
        "featurizer": "efficientnet_lite0",
        "tiles_dir": str(SAMPLE_TILES),
        "ingestion": {"sample_frac": 1.0, "test_fraction": 0.2},
        "featurization": {"onnx_file": {"path": None}},
        "logistic_regression": {"classifier": {"type": "logistic_regression"}},
        "random_forest": {"classifier": {"type": "random_forest"}},
    }
    params.update(overrides)
    return params


def test_good_parameters_pass():
    validate_run(_params(), {"raw_tiles"})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"featurizer": "resnet"}, "featurizer: 'resnet' is not allowed; allowed values: efficientnet_lite0"),
        ({"ingestion": {"sample_frac": 0, "test_fraction": 0.2}}, "ingestion.sample_frac: 0 is outside \\(0, 1\\]"),
        ({"ingestion": {"sample_frac": 1.5, "test_fraction": 0.2}}, "ingestion.sample_frac: 1.5 is outside"),
        ({"ingestion": {"sample_frac": 1, "test_fraction": 1}}, "ingestion.test_fraction: 1 is outside \\(0, 1\\)"),
        ({"random_forest": {"classifier": {"type": "xgboost"}}}, "random_forest.classifier.type: 'xgboost' is not allowed"),
        ({"tiles_dir": "/nonexistent/tiles"}, "tiles_dir: '/nonexistent/tiles' is not a folder"),
        ({"featurizer": "onnx_file"}, "featurization.onnx_file.path must name an .onnx file"),
        # A misspelt key is refused (it used to be ignored silently, the default applied).
        ({"ingestion": {"sample_frac": 1, "test_fraction": 0.2, "test_fracton": 0.5}},
         "ingestion.test_fracton: not a parameter here; did you mean test_fraction\\?"),
        ({"ingestion": {"sample_frac": 1, "test_fraction": 0.2, "zzz": 1}},
         "ingestion.zzz: not a parameter here; known: .*sample_frac"),
    ],
)
def test_bad_parameters_name_the_key(overrides, message):
    with pytest.raises(ParameterError, match=message):
        validate_run(_params(**overrides), {"raw_tiles"})


def test_tiles_dir_is_only_checked_when_the_pipeline_reads_tiles():
    validate_run(_params(tiles_dir="/nonexistent"), {"features"})


@pytest.mark.slow  # a kedro subprocess
def test_cli_fails_before_spark_starts():
    result = subprocess.run(
        [sys.executable, "-m", "kedro", "run", "--pipelines=train", "--params=featurizer=resnet"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "featurizer: 'resnet' is not allowed; allowed values:" in output
    assert "Spark 3." not in output  # the session was never started


LABELS = SAMPLE_TILES.parent / "labels" / "czech_west_labels.geojson"
SCENE = SAMPLE_TILES.parent / "rasters" / "czech_s2_tci_20220319.tif"
REFERENCE_INPUTS = {"raw_tiles", "params:reference_labels", "params:reference_rasters"}


def _reference_params(**overrides):
    params = _params(
        class_scheme="coarse",
        reference_labels=str(LABELS),
        reference_rasters=str(SCENE),
        reference_class_field="class",
        min_cover=0.5,
    )
    params.update(overrides)
    return params


def test_reference_labels_in_the_coarse_scheme_pass():
    validate_run(_reference_params(), REFERENCE_INPUTS)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        # EuroSAT's own scheme has no 'cropland': the labels' classes must be in the scheme.
        ({"class_scheme": "eurosat"}, "class_scheme: reference_labels class \\(class\\) 'built' is not in the class scheme"),
        ({"class_scheme": "fine"}, "class_scheme: 'fine' is not allowed"),
        ({"class_scheme": {"AnnualCrop": "crop"}}, "class_scheme: tiles_dir class folder .* 'Forest' is not in the class scheme"),
        ({"reference_class_field": "landcover"}, "reference_labels: .*landcover"),
        ({"reference_rasters": None}, "reference_rasters: not set"),
        ({"reference_labels": "/nonexistent/labels.geojson"}, "reference_labels: .*/nonexistent/labels.geojson"),
        ({"min_cover": 1.5}, "min_cover: 1.5 is outside"),
    ],
)
def test_reference_label_mistakes_fail_in_one_line_naming_the_culprit(overrides, message):
    with pytest.raises(ParameterError, match=message) as error:
        validate_run(_reference_params(**overrides), REFERENCE_INPUTS)
    assert "\n" not in str(error.value)


def test_labels_in_a_crs_that_cannot_be_read_fail_before_spark(tmp_path):
    bad = tmp_path / "labels.geojson"
    text = LABELS.read_text().replace(
        '"type": "FeatureCollection",',
        '"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::999999"}},',
        1,
    )
    bad.write_text(text)
    with pytest.raises(ParameterError, match="reference_labels: .*labels.geojson"):
        validate_run(_reference_params(reference_labels=str(bad)), REFERENCE_INPUTS)


def test_train_does_not_check_the_score_source_it_never_reads():
    # `train` reads the scoring settings (reference chips are cut on the scoring grid) but not
    # score_source: a default scene missing from this machine must not stop a training run.
    validate_run(_params(score_source="/nonexistent/scene.tif", scoring={}), {"raw_tiles", "params:scoring"})


def test_overlapping_chips_are_refused_where_chips_must_partition_the_ground():
    params = _params(assess={}, scoring={"chip_px": 64, "chip_stride_px": 32})
    with pytest.raises(ParameterError, match="scoring.chip_stride_px: 32 makes chips overlap"):
        validate_run(params, {"params:assess"})



OWN_CLASSES = {"harbor": ("SeaLake", 3), "golfcourse": ("Pasture", 3), "woodland": ("Forest", 3)}


def test_own_class_folders_pass_with_only_tiles_dir_changed(tmp_path):
    tiles = copy_tiles_as(SAMPLE_TILES, tmp_path, OWN_CLASSES)
    validate_run(_params(tiles_dir=str(tiles)), {"raw_tiles"})  # `folders` is the default
    validate_run(_params(tiles_dir=str(tiles), class_scheme="folders"), {"raw_tiles"})
    # A named scheme still demands its own classes.
    with pytest.raises(ParameterError, match=(
        "^class_scheme: tiles_dir class folder .*'golfcourse' is not in the class scheme; "
        "its classes are AnnualCrop, Forest"
    )):  # fmt: skip
        validate_run(_params(tiles_dir=str(tiles), class_scheme="eurosat"), {"raw_tiles"})


def test_reference_labels_of_the_folders_scheme_use_the_folder_names(tmp_path):
    tiles = copy_tiles_as(SAMPLE_TILES, tmp_path, OWN_CLASSES)
    with pytest.raises(ParameterError, match=(
        "^class_scheme: reference_labels class \\(class\\) 'built' is not in the class scheme; "
        "its classes are golfcourse, harbor, woodland$"
    )):  # fmt: skip
        validate_run(_reference_params(tiles_dir=str(tiles), class_scheme="folders"), REFERENCE_INPUTS)
    # The Czech labels' classes as folders: they pass, and count towards the two classes.
    tiles = copy_tiles_as(SAMPLE_TILES, tmp_path / "coarse", {"forest": ("Forest", 3)})
    for name in ("built", "cropland"):
        (tiles / name).mkdir()
    with pytest.raises(ParameterError, match="class folder 'built' .* has 0 tile"):
        validate_run(_reference_params(tiles_dir=str(tiles), class_scheme="folders"), REFERENCE_INPUTS)


def test_one_tile_class_and_reference_classes_make_a_model(tmp_path):
    tiles = copy_tiles_as(SAMPLE_TILES, tmp_path, {"Forest": ("Forest", 3)})
    validate_run(_reference_params(tiles_dir=str(tiles)), REFERENCE_INPUTS)  # coarse: + cropland, built
    with pytest.raises(ParameterError, match="holds 1 class folder\\(s\\) \\(Forest: 3 tile\\(s\\)\\);"):
        validate_run(_params(tiles_dir=str(tiles), class_scheme="coarse"), {"raw_tiles"})


def test_a_one_class_folder_is_refused_in_one_line_naming_it_and_its_class(tmp_path):
    tiles = copy_tiles_as(SAMPLE_TILES, tmp_path, {"woodland": ("Forest", 5)})
    with pytest.raises(ParameterError) as error:
        validate_run(_params(tiles_dir=str(tiles)), {"raw_tiles"})
    assert str(error.value) == (
        f"tiles_dir: '{tiles}' holds 1 class folder(s) (woodland: 5 tile(s)); "
        "a model needs at least two classes, this makes 1 (woodland)"
    )


def test_a_class_too_small_for_the_split_is_refused_naming_it(tmp_path):
    tiles = copy_tiles_as(SAMPLE_TILES, tmp_path, {"harbor": ("SeaLake", 1), "woodland": ("Forest", 5)})
    with pytest.raises(ParameterError, match=(
        f"^tiles_dir: class folder 'harbor' in '{tiles}' has 1 tile\\(s\\), 1 train and 0 test after "
        "ingestion.sample_frac 1.0 and ingestion.test_fraction 0.2; each class needs at least 2 tiles"
    )):  # fmt: skip
        validate_run(_params(tiles_dir=str(tiles)), {"raw_tiles"})
    # sample_frac 0.2 keeps 2 of harbor's 10 tiles (one each) but 1 of woodland's 5.
    tiles = copy_tiles_as(SAMPLE_TILES, tmp_path / "sampled", {"harbor": ("SeaLake", 10), "woodland": ("Forest", 5)})
    sampled = _params(tiles_dir=str(tiles), ingestion={"sample_frac": 0.2, "test_fraction": 0.2})
    with pytest.raises(ParameterError, match="class folder 'woodland' .* has 5 tile\\(s\\), 1 train and 0 test .* at least 6 tiles"):
        validate_run(sampled, {"raw_tiles"})

