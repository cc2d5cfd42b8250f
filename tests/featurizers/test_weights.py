"""What every built-in featurizer does with its weights file: pin check, allow-list unpickling."""

from __future__ import annotations

import collections
import io
import os
import pickle

import pytest

from aerial_kedro.featurizers.spec import sha256_hex
from aerial_kedro.featurizers.weights import AllowListUnpickler, read_pinned


class _PinError(RuntimeError):
    pass


def test_read_pinned_returns_the_bytes_or_names_both_digests(tmp_path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"weights")
    assert read_pinned(path, sha256_hex(b"weights"), _PinError, str(path)) == b"weights"
    with pytest.raises(_PinError) as excinfo:
        read_pinned(path, "0" * 64, _PinError, "weights.bin (pkg==1)")
    assert str(excinfo.value) == (
        f"sha256 mismatch for weights.bin (pkg==1): expected {'0' * 64}, got {sha256_hex(b'weights')}"
    )


def test_allow_list_unpickler_builds_only_what_it_allows() -> None:
    class _OnlyOrderedDict(AllowListUnpickler):
        allowed = {("collections", "OrderedDict"): collections.OrderedDict}

    ordered = collections.OrderedDict(a=1)
    assert _OnlyOrderedDict(io.BytesIO(pickle.dumps(ordered))).load() == ordered
    with pytest.raises(pickle.UnpicklingError, match=r"^global posix\.getcwd is not allowed"):
        _OnlyOrderedDict(io.BytesIO(pickle.dumps(os.getcwd))).load()
