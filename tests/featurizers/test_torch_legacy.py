"""Reading legacy (non-zip) torch.save files without torch."""

from __future__ import annotations

import os
import pickle

import pytest

from aerial_kedro.featurizers.torch_legacy import LEGACY_MAGIC, parse_legacy_torch_file


def test_restricted_unpickler_rejects_other_globals() -> None:
    header = (
        pickle.dumps(LEGACY_MAGIC) + pickle.dumps(1001) + pickle.dumps({"little_endian": True})
    )
    with pytest.raises(pickle.UnpicklingError, match="forbidden global"):
        parse_legacy_torch_file(header + pickle.dumps(os.getcwd, protocol=2))
