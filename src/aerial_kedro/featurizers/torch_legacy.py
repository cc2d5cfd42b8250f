"""Legacy (pre-1.6, non-zip) ``torch.save`` state dicts read into numpy arrays, without torch.

The layout: a sequence of pickles (magic number, protocol version, system info, the state dict,
the list of storage keys) followed by the raw storages, each prefixed by its element count as a
little-endian int64. The pickles are read with an allow-list unpickler that maps the few torch
globals a state dict uses to numpy builders; nothing else can be constructed.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
import struct
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from aerial_kedro.featurizers.weights import AllowListUnpickler

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
}


@dataclass
class _Storage:
    dtype: np.dtype
    numel: int
    data: np.ndarray | None = None


@dataclass(frozen=True)
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(
    storage: _Storage,
    storage_offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    requires_grad: bool = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> _TensorRef:
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError("tensor without a storage")
    return _TensorRef(storage, int(storage_offset), tuple(size), tuple(stride))


class _RestrictedTorchUnpickler(AllowListUnpickler):
    """Unpickler that only knows the few torch/collections globals a state dict uses."""

    allowed: ClassVar[dict[tuple[str, str], Any]] = {
        ("collections", "OrderedDict"): collections.OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        **{("torch", name): dtype for name, dtype in _STORAGE_DTYPES.items()},
    }
    refusal: ClassVar[str] = "forbidden global in weights file: {module}.{name}"

    def __init__(self, file: io.BytesIO, storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self._storages = storages

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id: {pid!r}")
        _, dtype, key, _location, numel, view_metadata = pid
        if not isinstance(dtype, np.dtype) or view_metadata is not None:
            raise pickle.UnpicklingError(f"unsupported storage: {pid!r}")
        storage = self._storages.setdefault(str(key), _Storage(dtype, int(numel)))
        if storage.dtype != dtype or storage.numel != numel:
            raise pickle.UnpicklingError(f"inconsistent storage {key!r}")
        return storage


def parse_legacy_torch_file(payload: bytes) -> dict[str, np.ndarray]:
    """Read a legacy (non-zip) ``torch.save`` state dict of tensors into numpy arrays."""
    stream = io.BytesIO(payload)
    storages: dict[str, _Storage] = {}

    def load() -> Any:
        return _RestrictedTorchUnpickler(stream, storages).load()

    if load() != LEGACY_MAGIC or load() != LEGACY_PROTOCOL:
        raise ValueError("not a legacy torch.save file (bad magic number / protocol)")
    sys_info = load()
    if not sys_info.get("little_endian", False):
        raise ValueError("big-endian torch files are not supported")
    state = load()
    keys = load()
    _read_storages(stream, payload, storages, keys)
    return {str(k): _materialize(v) for k, v in state.items()}


def _read_storages(
    stream: io.BytesIO, payload: bytes, storages: dict[str, _Storage], keys: list[str]
) -> None:
    if sorted(keys) != sorted(storages):
        raise ValueError("storage key list does not match the tensors in the state dict")
    pos = stream.tell()
    for key in keys:
        storage = storages[key]
        (numel,) = struct.unpack_from("<q", payload, pos)
        pos += 8
        nbytes = numel * storage.dtype.itemsize
        if numel != storage.numel or pos + nbytes > len(payload):
            raise ValueError(f"corrupt storage {key!r}: {numel} elements, {storage.numel} declared")
        storage.data = np.frombuffer(payload, dtype=storage.dtype, count=numel, offset=pos)
        pos += nbytes
    if pos != len(payload):
        raise ValueError(f"{len(payload) - pos} unexpected trailing bytes after the storages")


def _materialize(ref: Any) -> np.ndarray:
    if not isinstance(ref, _TensorRef) or ref.storage.data is None:
        raise ValueError(f"state dict value is not a tensor: {type(ref).__name__}")
    data = ref.storage.data
    extent = sum((n - 1) * s for n, s in zip(ref.shape, ref.stride, strict=True) if n > 0)
    numel = math.prod(ref.shape)
    if ref.offset < 0 or (numel and ref.offset + extent >= data.size):
        raise ValueError("tensor view out of its storage bounds")
    strides = tuple(s * data.itemsize for s in ref.stride)
    view = np.lib.stride_tricks.as_strided(data[ref.offset :], shape=ref.shape, strides=strides)
    return np.array(view, copy=True)

