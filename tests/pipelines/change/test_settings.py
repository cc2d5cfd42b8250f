"""The typed change settings: what the types accept, how a failure reads (as the former
hand-written check did, one line naming the key), and that the domain code gets plain values."""

from __future__ import annotations

import subprocess
import sys

import pydantic
import pytest
import yaml
from conftest import PROJECT_ROOT, SHARED_DATA

from aerial_kedro.change.appearance import AppearanceCriteria
from aerial_kedro.change.scores import DEFAULT_GROUPS
from aerial_kedro.change.table import criteria_from_params
from aerial_kedro.errors import ParameterError
from aerial_kedro.pipelines.change.settings import ChangeSettings, require_chips_for_appearance

REFERENCE = str(SHARED_DATA / "oscd/pisa/change_labels.tif")


@pytest.fixture
def change() -> dict:
    """The `change` block of conf/base/parameters_change.yml (interpolations left as text)."""
    return yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_change.yml").read_text())["change"]


def _fails(change: dict, **changes: object) -> str:
    with pytest.raises(ParameterError) as error:
        ChangeSettings.from_params({**change, **changes})
    assert "\n" not in str(error.value)
    return str(error.value)


def test_the_configured_block_becomes_typed_attributes(change):
    settings = ChangeSettings.from_params(change)
    assert settings.before.endswith("czech_s2_tci_20220316_cloudy.tif")
    assert (settings.score, settings.threshold, settings.confidence_floor) == ("appearance", 0.5, 0.5)
    assert settings.map_score == "tv"  # the class-probability score kept beside it
    appearance = settings.appearance
    assert (appearance.colour_quantile, appearance.texture_weight, appearance.threshold_z) == (
        0.95, 0.5, 2.25)  # fmt: skip
    assert (appearance.neighbours, appearance.reference_chips) == (50, 1024)
    assert (appearance.chip_baseline, appearance.cell_window, appearance.context_weight) == (
        1.0, 1, 0.0)  # fmt: skip
    assert appearance.criteria().neighbours == 50 and appearance.criteria().chip_baseline == 1.0
    # The file writes out the code's defaults: a block left out means what the file says.
    assert appearance.criteria() == AppearanceCriteria()
    assert settings.max_cloud_fraction == 0.2 and settings.require_class_change is False
    assert settings.cloud_neighbours == 1
    assert settings.groups is not None and settings.groups["Residential"] == "built"
    # Without a reference its two settings are not read, so not checked either.
    assert settings.reference is None and settings.reference_min_fraction is None
    assert settings.reference_change_value is None
    assert not hasattr(settings, "radiometry_reference")  # the scoring pipelines read that
    with pytest.raises(pydantic.ValidationError):
        settings.threshold = 0.9  # frozen: every node reads the same settings


def test_integers_are_fractions_and_mappings_are_groups(change):
    settings = ChangeSettings.from_params({**change, "threshold": 1, "groups": {}})
    assert repr(settings.threshold) == "1.0" and settings.groups == {}


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("before", None, "change.before: not set; pass --params=change.before=PATH"),
        ("after", "", "change.after: not set; pass --params=change.after=PATH"),
        ("threshold", 1.5, "change.threshold: '1.5' is not a number in [0, 1]"),
        # Strict types: YAML's true is not 1, "0.5" is not 0.5.
        ("confidence_floor", True, "change.confidence_floor: 'True' is not a number in [0, 1]"),
        ("max_cloud_fraction", "0.5", "change.max_cloud_fraction: '0.5' is not a number in [0, 1]"),
        ("cloud_neighbours", -1, "change.cloud_neighbours: '-1' is not an integer >= 0"),
        ("max_cloud_fraction", float("nan"),
         "change.max_cloud_fraction: 'nan' is not a number in [0, 1]"),
        ("score", "cosine", "change.score: 'cosine' is not allowed; allowed: appearance (the "
         "default), tv, hellinger, gain:<class>"),
        ("require_class_change", "yes", "change.require_class_change: 'yes' is not true or false"),
        ("groups", {"Forest": 3}, "change.groups: not a mapping {model class: coarse class}"),
        ("groups", {"Forest": ""}, "change.groups: not a mapping {model class: coarse class}"),
        ("groups", ["Forest"], "change.groups: not a mapping {model class: coarse class}"),
        ("reference", "nowhere.tif", "change.reference: 'nowhere.tif' is not a file"),
        ("reference", 3, "change.reference: '3' is not a file"),
    ],
)  # fmt: skip
def test_a_failure_is_one_line_naming_the_key(change, key, value, message):
    assert _fails(change, **{key: value}) == message


def test_a_missing_key_reads_as_null(change):
    for key, message in [
        ("score", "change.score: 'None' is not allowed"),
        ("threshold", "change.threshold: 'None' is not a number in [0, 1]"),
        ("before", "change.before: not set"),
    ]:
        assert _fails({k: v for k, v in change.items() if k != key}).startswith(message)
    assert ChangeSettings.from_params({**change, "groups": None}).groups is None


def test_the_first_bad_key_in_check_order_is_reported(change):
    bad = {**change, "reference": "nowhere.tif", "score": "cosine", "threshold": 2}
    assert _fails(bad).startswith("change.threshold:")
    assert _fails(bad, after=None).startswith("change.after:")
    assert _fails({}) == "change.before: not set; pass --params=change.before=PATH"


def test_reference_settings_are_checked_only_with_a_reference(change):
    ignored = ChangeSettings.from_params({**change, "reference_min_fraction": "x"})
    assert ignored.reference_min_fraction is None
    settings = ChangeSettings.from_params({**change, "reference": REFERENCE})
    assert (settings.reference_min_fraction, settings.reference_change_value) == (0.1, 2)
    with_reference = {**change, "reference": REFERENCE}
    assert _fails(with_reference, reference_min_fraction=0) == (
        "change.reference_min_fraction: must be > 0"
    )
    assert _fails(with_reference, reference_min_fraction=None) == (
        "change.reference_min_fraction: 'None' is not a number in [0, 1]"
    )
    assert _fails(with_reference, reference_change_value=2.0) == (
        "change.reference_change_value: '2.0' is not an integer"
    )
    missing = {k: v for k, v in with_reference.items() if k != "reference_change_value"}
    assert _fails(missing) == "change.reference_change_value: 'None' is not an integer"
    # A bad reference is reported, not its settings.
    assert _fails(change, reference="nowhere.tif", reference_change_value=None).startswith(
        "change.reference:"
    )
    # Blob references are read (and checked) when assessing.
    url = "https://account.blob.core.windows.net/labels/change.tif"
    assert ChangeSettings.from_params({**change, "reference": url}).reference == url


def test_the_domain_code_takes_the_settings_values(change):
    settings = ChangeSettings.from_params({**change, "groups": None, "score": "gain:built"})
    assert not hasattr(settings, "__getitem__")  # read by attribute, not as the former dict
    domain = criteria_from_params(settings.model_dump())
    assert (domain.method, domain.threshold, domain.max_cloud_fraction) == ("gain:built", 0.5, 0.2)
    assert domain.groups == dict(DEFAULT_GROUPS)


def test_the_domain_code_imports_no_pydantic():
    code = (
        "import sys; import aerial_kedro.change.table, aerial_kedro.change.scores; "
        "assert 'pydantic' not in sys.modules and 'kedro' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT_ROOT)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"threshold_z": "high"}, "change.appearance.threshold_z: 'high' is not a number"),
        ({"colour_quantile": 0}, "change.appearance.colour_quantile: '0' is not a number in (0, 1]"),
        ({"texture_weight": -1}, "change.appearance.texture_weight: '-1' is not a number >= 0"),
        (
            {"neighbours": 1},
            "change.appearance.neighbours: '1' is not 0 or an integer >= 2 (1 neighbour has no "
            "spread)",
        ),
        ({"neighbours": -3}, "change.appearance.neighbours: '-3' is not 0 or an integer >= 2"),
        ({"reference_chips": 1}, "change.appearance.reference_chips: '1' is not an integer >= 2"),
        (
            {"threshhold_z": 2.0},
            "change.appearance.threshhold_z: not a parameter here; did you mean threshold_z?",
        ),
        ({"context_weight": -0.5}, "change.appearance.context_weight: '-0.5' is not a number >= 0"),
        (
            {"cell_window": 2},
            "change.appearance.cell_window: '2' is not an odd integer >= 1 (the window is centred "
            "on a cell)",
        ),
        ({"cell_window": 0}, "change.appearance.cell_window: '0' is not an odd integer >= 1"),
        ({"cloudy_cell": 0}, "change.appearance.cloudy_cell: '0' is not a number in (0, 1]"),
        ({"cloud_buffer": -1}, "change.appearance.cloud_buffer: '-1' is not an integer >= 0"),
        ("loud", "change.appearance: 'loud' is not a mapping"),
    ],
)
def test_a_bad_appearance_key_is_named_in_full(change, block, message):
    with pytest.raises(ParameterError) as raised:
        ChangeSettings.from_params({**change, "appearance": block})
    assert str(raised.value) == message


def test_appearance_needs_chips_side_by_side(change):
    settings = ChangeSettings.from_params(change)
    require_chips_for_appearance(settings, {"chip_px": 64, "chip_stride_px": None})
    with pytest.raises(ParameterError, match=r"chip_stride_px=32; pass --params=change.score=tv"):
        require_chips_for_appearance(settings, {"chip_px": 64, "chip_stride_px": 32})
    tv = ChangeSettings.from_params({**change, "score": "tv"})
    require_chips_for_appearance(tv, {"chip_px": 64, "chip_stride_px": 32})
