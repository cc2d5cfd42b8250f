"""The typed scoring settings: what the types accept, how a failure reads, who can still read
them as a mapping, and that the modules they replaced no longer import each other."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pydantic
import pytest
import yaml
from conftest import CZECH_SCENE as SCENE
from conftest import PROJECT_ROOT, RASTERS

from aerial_kedro.chips.planning import PlanSettings, plan_source, run_identity
from aerial_kedro.chips.records import ChipReading
from aerial_kedro.chips.settings import ScoringSettings
from aerial_kedro.errors import ParameterError
from aerial_kedro.geo.radiometry import Radiometry

PART = RASTERS / "czech-2x2" / "czech_s2_tci_20220319.0.tif"


@pytest.fixture
def scoring() -> dict:
    """The `scoring` block of conf/base/parameters_scoring.yml, runtime resolvers replaced."""
    params = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_scoring.yml").read_text())
    return {**params["scoring"], "model": "logistic_regression"}


def _fails(scoring: dict, source: object = SCENE, reference: object = None) -> str:
    with pytest.raises(ParameterError) as error:
        ScoringSettings.from_params(str(source) if source else source, scoring, reference)
    assert "\n" not in str(error.value)
    return str(error.value)


def test_defaults_become_typed_attributes(scoring):
    settings = ScoringSettings.from_params(str(SCENE), scoring)
    assert settings.score_source == str(SCENE) and settings.radiometry_reference is None
    assert settings.model == "logistic_regression" and settings.source_kind == "auto"
    assert (settings.chip_px, settings.chunk_size, settings.batch_size) == (64, 512, 64)
    assert settings.chip_stride_px is None and settings.max_chips == 2_000_000
    assert settings.smoothing is True and settings.restart is False
    assert settings.radiometry == "auto" and settings.radiometry_match == "when_hazier"
    with pytest.raises(pydantic.ValidationError):
        settings.chip_px = 32  # frozen: every node reads the same settings


def test_numbers_keep_the_run_id_of_the_former_settings_dict(scoring):
    # YAML `resolution: 10` and `max_empty_fraction: 1` were made floats before; the run id
    # hashes their repr, so an int here would start a new run instead of resuming.
    scoring.update(resolution=10, max_empty_fraction=1, bands=(1, 2, 3))
    settings = ScoringSettings.from_params(str(SCENE), scoring)
    assert repr(settings.resolution) == "10.0" and repr(settings.max_empty_fraction) == "1.0"
    assert settings.bands == [1, 2, 3]  # a tuple from Python code reads as the YAML list
    plan, _, _ = plan_source(str(PART), PlanSettings(chunk_size=8))
    former = PlanSettings(resolution=10.0, chunk_size=512, max_empty_fraction=1.0)
    assert run_identity(plan, settings.plan, "m") == run_identity(plan, former, "m")


def _with(scoring: dict, **changes: object) -> ScoringSettings:
    return ScoringSettings.from_params(str(SCENE), {**scoring, **changes})


def test_stride_equal_to_the_chip_means_side_by_side(scoring):
    assert _with(scoring, chip_stride_px=64).chip_stride_px is None
    assert _with(scoring, chip_stride_px=32).chip_stride_px == 32


def test_band_files_are_all_three_colours_or_none(scoring):
    files = {"red": "r.tif", "green": "g.tif", "blue": "b.tif"}
    assert _with(scoring, band_files=files).band_files == files
    assert _with(scoring, band_files={}).band_files is None
    bad = {**files, "blue": ""}
    assert _fails({**scoring, "band_files": bad}).startswith("scoring.band_files: '{'red'")
    extra = {**files, "nir": "n.tif"}
    assert "is not a mapping {red: path, green: path, blue: path}" in _fails(
        {**scoring, "band_files": extra}
    )


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        # Strict types: YAML's true is not 1, "64" is not 64, 64.0 is not a pixel count.
        ("chip_px", True, "scoring.chip_px: 'True' is not an integer >= 1"),
        ("chip_px", "64", "scoring.chip_px: '64' is not an integer >= 1"),
        ("batch_size", 64.0, "scoring.batch_size: '64.0' is not an integer >= 1"),
        ("threads_per_task", -2, "scoring.threads_per_task: '-2' is not an integer >= 1"),
        ("restart", 1, "scoring.restart: '1' is not true or false"),
        ("resolution", True, "scoring.resolution: 'True' is not a positive number"),
        ("max_empty_fraction", 0, "scoring.max_empty_fraction: '0' is not a positive number"),
        ("max_empty_fraction", 2, "scoring.max_empty_fraction: 2.0 is outside (0, 1]"),
        ("bands", [1, 2, True], "scoring.bands: '[1, 2, True]' is not three 1-based band numbers"),
        ("bands", [0, 1, 2], "scoring.bands: '[0, 1, 2]' is not three 1-based band numbers"),
        ("model", "  ", "scoring.model: '  ' is not a model name"),
        ("radiometry_match", "sometimes",
         "scoring.radiometry_match: 'sometimes' is not allowed; allowed values: when_hazier, "
         "always, never"),
        ("source_kind", None, "scoring.source_kind: 'None' is not allowed; allowed values: auto"),
    ],
)  # fmt: skip
def test_a_failure_is_one_line_naming_the_key(scoring, key, value, message):
    assert _fails({**scoring, key: value}).startswith(message)


def test_a_missing_required_key_reads_as_none(scoring):
    del scoring["chunk_size"]
    assert _fails(scoring) == "scoring.chunk_size: 'None' is not an integer >= 1"


def test_the_first_bad_key_in_check_order_is_reported(scoring):
    scoring.update(bands=[1], chip_px=0, radiometry_match="x")
    assert _fails(scoring).startswith("scoring.chip_px:")
    assert _fails(scoring, source=None).startswith("score_source: not set")


def test_sources_are_named_without_the_scoring_prefix(scoring, tmp_path):
    missing = tmp_path / "reference.tif"
    message = _fails(scoring, reference=str(missing))
    assert message == f"radiometry_reference: '{missing}' does not exist"
    assert _fails(scoring, reference=3).startswith("radiometry_reference: not set; pass --params=")
    settings = ScoringSettings.from_params(str(SCENE), scoring, "")
    assert settings.radiometry_reference is None
    vsi = ScoringSettings.from_params("/vsiaz/imagery/scene.tif", scoring, str(PART))
    assert vsi.score_source == "/vsiaz/imagery/scene.tif" and vsi.radiometry_reference == str(PART)


def test_planning_takes_the_settings_values(scoring):
    # Planning (also used by reference and change) takes the settings' typed planning part.
    settings = ScoringSettings.from_params(str(PART), {**scoring, "chunk_size": 8})
    assert not hasattr(settings, "__getitem__")  # read by attribute, not as the former dict
    plan, problems, _ = plan_source(settings.score_source, settings.plan)
    assert problems == [] and len(plan) > 0 and plan["chunk"].max() == (len(plan) - 1) // 8


def test_kedro_leaves_the_scoring_parameters_to_the_first_node():
    # Kedro 1.7 converts params: inputs annotated with a model before any hook, with a
    # multi-line error; none of the scoring nodes may opt in, or our one-line errors go.
    from kedro.validation import TypeExtractor

    from aerial_kedro.pipelines.scoring.pipeline import create_pipeline

    assert TypeExtractor({"score": create_pipeline()}).extract_types_from_pipelines() == {}


def _fresh(code: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=Path(PROJECT_ROOT), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize(
    "module",
    ["aerial_kedro.validation", "aerial_kedro.chips.settings",
     "aerial_kedro.pipelines.scoring.nodes"],
)  # fmt: skip
def test_each_module_imports_first_in_a_fresh_interpreter(module):
    _fresh(f"import {module}")


def test_the_pipelines_no_longer_import_the_run_level_checks():
    # The circle was scoring.nodes -> validation -> scoring.nodes (and assess/change likewise):
    # the nodes now take ParameterError from aerial_kedro.errors.
    _fresh(
        "import sys\n"
        "import aerial_kedro.pipelines.scoring.nodes, aerial_kedro.pipelines.assess.nodes\n"
        "import aerial_kedro.pipelines.change.nodes, aerial_kedro.pipelines.featurization.nodes\n"
        "assert 'aerial_kedro.validation' not in sys.modules, 'a pipeline imports validation'"
    )


def test_workers_read_as_the_settings_say(scoring):
    """The one record every worker path reads by: the task's cores unless threads_per_task."""
    radiometry = Radiometry("sentinel2_l1c", 1.0, 0.0, (0.0, 0.0, 0.0), (2500.0, 2500.0, 2500.0))
    reading = _with(scoring, batch_size=12, bands=[3, 2, 1]).reading(4, radiometry, True)
    assert reading == ChipReading(12, 4, 0.5, (3, 2, 1), radiometry, augment=True)
    assert _with(scoring, threads_per_task=1).reading(4, None).threads == 1


@pytest.mark.parametrize("fields", [{"batch_size": 0}, {"radiometry": "sentinel2_l1c"}])
def test_a_reading_refuses_what_no_worker_could_use(fields):
    with pytest.raises(ValueError, match="batch_size|resolve a preset"):
        ChipReading(**{"batch_size": 8, "threads": 1, "max_empty_fraction": 0.5, **fields})
