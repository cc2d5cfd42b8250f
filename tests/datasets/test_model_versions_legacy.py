"""A project trained before models were versioned keeps scoring: its featurizer files load."""

from __future__ import annotations

import json

import pytest
from kedro.io.core import DatasetError, Version

from aerial_kedro.datasets.model_versions import VersionedBinaryFileDataset, VersionedJSONDataset


def test_unversioned_featurizer_files_load_with_a_warning(tmp_path, caplog):
    onnx, spec = tmp_path / "f.onnx", tmp_path / "f.json"
    onnx.write_bytes(b"onnx bytes")
    spec.write_text(json.dumps({"name": "f"}))
    binary = VersionedBinaryFileDataset(filepath=str(onnx), version=Version(None, None))
    document = VersionedJSONDataset(filepath=str(spec), version=Version(None, None))
    with caplog.at_level("WARNING"):
        assert binary.load() == b"onnx bytes"
        assert document.load() == {"name": "f"}
    assert caplog.text.count("saved before models were versioned") == 2


def test_a_versioned_save_wins_over_nothing_and_nothing_is_an_error(tmp_path):
    missing = VersionedJSONDataset(filepath=str(tmp_path / "none.json"), version=Version(None, None))
    with pytest.raises(DatasetError):
        missing.load()
    saved = VersionedJSONDataset(filepath=str(tmp_path / "s.json"), version=Version(None, None))
    saved.save({"v": 1})
    assert VersionedJSONDataset(filepath=str(tmp_path / "s.json"), version=Version(None, None)).load() == {"v": 1}
