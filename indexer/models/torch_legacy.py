"""Read a PyTorch state dict in the legacy (non-zip) ``torch.save`` format, without torch."""

from __future__ import annotations

import functools
import io
import pickle
import struct
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from numpy.lib.stride_tricks import as_strided

from indexer.errors import ModelError

__all__ = ["LEGACY_MAGIC", "LEGACY_PROTOCOL", "read_state_dict"]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# Storage class name -> numpy dtype (byte order applied later from sys_info).
_STORAGE_DTYPES: dict[str, str] = {
    "DoubleStorage": "f8",
    "FloatStorage": "f4",
    "HalfStorage": "f2",
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


@dataclass
class _StorageType:
    """Stand-in for a ``torch.*Storage`` class named in the pickle (a fresh one per lookup)."""

    name: str


@dataclass
class _Storage:
    """A storage declared by a persistent id; its bytes are read after the pickles."""

    key: str
    dtype: np.dtype[Any]
    numel: int
    data: np.ndarray[Any, Any] | None = None


@dataclass
class _TensorRef:
    """A tensor view waiting for its storage bytes."""

    storage: _Storage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]
    extra: dict[str, Any] = field(default_factory=dict)


def _rebuild_tensor_v2(
    storage: Any, storage_offset: Any, size: Any, stride: Any, *_rest: Any
) -> _TensorRef:
    """Stand-in for ``torch._utils._rebuild_tensor_v2`` (requires_grad, hooks ignored)."""
    return _make_ref(storage, storage_offset, size, stride)


def _rebuild_tensor(storage: Any, storage_offset: Any, size: Any, stride: Any) -> _TensorRef:
    """Stand-in for the older ``torch._utils._rebuild_tensor``."""
    return _make_ref(storage, storage_offset, size, stride)


def _rebuild_parameter(data: Any, *_rest: Any) -> _TensorRef:
    """Stand-in for ``torch._utils._rebuild_parameter``: a Parameter is its tensor."""
    if not isinstance(data, _TensorRef):
        raise ModelError("torch checkpoint: a Parameter does not wrap a tensor")
    return data


def _as_int_tuple(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise ModelError(f"torch checkpoint: tensor {what} is not a tuple of ints")
    return value


def _make_ref(storage: Any, storage_offset: Any, size: Any, stride: Any) -> _TensorRef:
    if not isinstance(storage, _Storage):
        raise ModelError("torch checkpoint: a tensor does not reference a storage")
    if not isinstance(storage_offset, int) or storage_offset < 0:
        raise ModelError("torch checkpoint: a tensor has an invalid storage offset")
    shape = _as_int_tuple(size, "size")
    strides = _as_int_tuple(stride, "stride")
    if len(shape) != len(strides) or any(s < 0 for s in shape) or any(s < 0 for s in strides):
        raise ModelError("torch checkpoint: a tensor has inconsistent size and stride")
    return _TensorRef(storage, storage_offset, shape, strides)


# (module, name) -> local callable; the only globals the unpickler will resolve.
_ALLOWED_CALLABLES: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the handful of globals a state dict needs."""

    def __init__(self, file: BinaryIO, byte_order: str, storages: dict[str, _Storage]) -> None:
        super().__init__(file)
        self._byte_order = byte_order
        self._storages = storages

    def find_class(self, module: str, name: str) -> Any:
        """Map an allowed torch/collections name to its stand-in; refuse anything else."""
        # Fresh objects each time: the BUILD opcode can set attributes on whatever
        # find_class returns, and must not reach shared classes such as OrderedDict.
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        target = _ALLOWED_CALLABLES.get((module, name))
        if target is None:
            raise ModelError(
                f"torch checkpoint: refusing to load global {module}.{name} "
                "(not a plain state dict)"
            )
        return functools.partial(target)

    def persistent_load(self, pid: Any) -> Any:
        """Turn a storage persistent id into a (not yet filled) storage record."""
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise ModelError(f"torch checkpoint: unsupported persistent id {pid!r:.60}")
        storage_type, key, _location, numel = pid[1], pid[2], pid[3], pid[4]
        view_metadata = pid[5] if len(pid) > 5 else None
        if not isinstance(storage_type, _StorageType):
            raise ModelError("torch checkpoint: persistent id names no storage type")
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise ModelError("torch checkpoint: malformed storage persistent id")
        dtype = np.dtype(self._byte_order + _STORAGE_DTYPES[storage_type.name])
        storage = self._storages.get(key)
        if storage is None:
            storage = _Storage(key, dtype, numel)
            self._storages[key] = storage
        elif storage.dtype != dtype:
            raise ModelError(f"torch checkpoint: storage {key} is declared with two dtypes")
        if view_metadata is not None:
            # Very old files shared one storage through sub-storage views.
            raise ModelError("torch checkpoint: storage views are not supported")
        return storage


def _load_plain(file: BinaryIO, what: str) -> Any:
    """Load one of the header pickles, which hold only builtins."""
    try:
        return _RestrictedUnpickler(file, "<", {}).load()
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"torch checkpoint: cannot read the {what}: {exc}") from exc


def _read_exact(file: BinaryIO, n: int, what: str) -> bytes:
    here = file.tell()
    end = file.seek(0, io.SEEK_END)
    file.seek(here)
    if n > end - here:  # checked first: a forged count must not make read() allocate it
        raise ModelError(f"torch checkpoint: file ends inside {what}")
    data = file.read(n)
    if len(data) != n:
        raise ModelError(f"torch checkpoint: file ends inside {what}")
    return data


def _materialise(ref: _TensorRef, name: str) -> np.ndarray[Any, Any]:
    data = ref.storage.data
    if data is None:
        raise ModelError(f"torch checkpoint: storage of {name} has no data")
    if 0 in ref.size:
        return np.zeros(ref.size, dtype=data.dtype.newbyteorder("="))
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride, strict=True))
    if last >= data.size:
        raise ModelError(f"torch checkpoint: tensor {name} reaches past the end of its storage")
    base = data[ref.offset :]
    item = data.itemsize
    view = as_strided(
        base, shape=ref.size, strides=tuple(s * item for s in ref.stride), writeable=False
    )
    # Copy so the result owns native-order, contiguous memory and no storage is shared.
    return np.array(view, dtype=data.dtype.newbyteorder("="), order="C", copy=True)


def _read(file: BinaryIO) -> dict[str, np.ndarray[Any, Any]]:
    if file.read(4) == b"PK\x03\x04":
        raise ModelError("torch checkpoint: zip-format file; only the legacy format is read here")
    file.seek(0)
    magic = _load_plain(file, "magic number")
    if magic != LEGACY_MAGIC:
        raise ModelError("torch checkpoint: not a legacy torch.save file (bad magic number)")
    protocol = _load_plain(file, "protocol version")
    if protocol != LEGACY_PROTOCOL:
        raise ModelError(f"torch checkpoint: unsupported protocol version {protocol!r}")
    sys_info = _load_plain(file, "sys_info")
    if not isinstance(sys_info, dict):
        raise ModelError("torch checkpoint: malformed sys_info")
    byte_order = "<" if sys_info.get("little_endian", True) else ">"

    storages: dict[str, _Storage] = {}
    try:
        obj = _RestrictedUnpickler(file, byte_order, storages).load()
    except ModelError:
        raise
    except Exception as exc:
        raise ModelError(f"torch checkpoint: cannot unpickle the state dict: {exc}") from exc
    keys = _load_plain(file, "storage key list")
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ModelError("torch checkpoint: malformed storage key list")

    for key in keys:
        storage = storages.get(key)
        if storage is None:
            raise ModelError(f"torch checkpoint: storage {key} is listed but never used")
        (count,) = struct.unpack(byte_order + "q", _read_exact(file, 8, f"storage {key}"))
        if count != storage.numel:
            raise ModelError(
                f"torch checkpoint: storage {key} holds {count} elements, expected {storage.numel}"
            )
        raw = _read_exact(file, count * storage.dtype.itemsize, f"storage {key}")
        storage.data = np.frombuffer(raw, dtype=storage.dtype)

    if not isinstance(obj, dict):
        raise ModelError("torch checkpoint: the saved object is not a state dict")
    result: dict[str, np.ndarray[Any, Any]] = {}
    for name, value in obj.items():
        if not isinstance(name, str) or not isinstance(value, _TensorRef):
            raise ModelError(f"torch checkpoint: entry {name!r:.60} is not a named tensor")
        try:
            result[name] = _materialise(value, name)
        except (AttributeError, TypeError, ValueError) as exc:  # fields rewritten by BUILD
            raise ModelError(f"torch checkpoint: tensor {name} is malformed: {exc}") from exc
    return result


def read_state_dict(source: str | Path | bytes) -> dict[str, np.ndarray[Any, Any]]:
    """Read a legacy-format torch state dict (a path or the file's bytes) into numpy arrays.

    Layout of such a file, all pickles at protocol 2:

        pickle  magic number 0x1950a86a20f9469cfc6c
        pickle  protocol version 1001
        pickle  sys_info dict (little_endian, type_sizes)
        pickle  the object; storages appear as persistent ids
                ('storage', StorageType, key, location, numel, view_metadata)
        pickle  list of storage keys, in the order their bytes follow
        then, per key: int64 element count, then count * itemsize raw bytes

    Tensors are views (offset, size, stride) into storages, so one storage can back
    several tensors and a tensor need not be contiguous.
    """
    if isinstance(source, bytes):
        return _read(io.BytesIO(source))
    try:
        with open(source, "rb") as file:
            return _read(file)
    except OSError as exc:
        raise ModelError(f"torch checkpoint: cannot open {source}: {exc.strerror}") from exc
