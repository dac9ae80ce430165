"""The legacy torch.save reader, on files written here byte by byte, and on the real weights."""

from __future__ import annotations

import pickle
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from indexer.errors import ModelError
from indexer.models import torch_legacy
from indexer.models.efficientnet_lite import lite_weights_path
from indexer.models.torch_legacy import LEGACY_MAGIC, LEGACY_PROTOCOL, read_state_dict

# --- a tiny writer of the legacy layout, emitting pickle opcodes directly (no torch here) ---


def _global(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def _str(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def _long(value: int) -> bytes:
    raw = value.to_bytes(8, "little", signed=True)
    return b"\x8a\x08" + raw  # LONG1 with 8 bytes


def _tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


_STORAGE_TYPES = {np.dtype("float32"): "FloatStorage", np.dtype("int64"): "LongStorage",
                  np.dtype("float64"): "DoubleStorage"}


@dataclass
class View:
    """A tensor as torch stores it: a view of a storage."""

    storage: str
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def header(magic: int = LEGACY_MAGIC) -> bytes:
    """The three leading pickles: magic number, protocol version, sys_info."""
    return b"".join([
        pickle.dumps(magic, protocol=2),
        pickle.dumps(LEGACY_PROTOCOL, protocol=2),
        pickle.dumps({"protocol_version": LEGACY_PROTOCOL, "little_endian": True,
                      "type_sizes": {"short": 2, "int": 4, "long": 4}}, protocol=2),
    ])


def write_legacy(
    tensors: dict[str, View], storages: dict[str, np.ndarray], *,
    object_global: tuple[str, str] = ("collections", "OrderedDict"),
    magic: int = LEGACY_MAGIC, storage_counts: dict[str, int] | None = None,
    declared_numel: dict[str, int] | None = None,
) -> bytes:
    """Bytes of a legacy torch.save file holding ``tensors`` (views of ``storages``)."""
    out = [header(magic)]
    body = b"\x80\x02" + _global(*object_global) + b")R("
    for name, view in tensors.items():
        data = storages[view.storage]
        pid = _tuple(_str("storage"), _global("torch", _STORAGE_TYPES[data.dtype]),
                     _str(view.storage), _str("cpu"),
                     _long((declared_numel or {}).get(view.storage, data.size)), b"N")
        args = _tuple(pid + b"Q", _int(view.offset), _tuple(*map(_int, view.size)),
                      _tuple(*map(_int, view.stride)), b"\x89",
                      _global("collections", "OrderedDict") + b")R")
        body += _str(name) + _global("torch._utils", "_rebuild_tensor_v2") + args + b"R"
    out.append(body + b"u.")
    out.append(pickle.dumps(list(storages), protocol=2))
    for key, data in storages.items():
        count = data.size if storage_counts is None else storage_counts.get(key, data.size)
        out.append(struct.pack("<q", count) + data.astype(data.dtype.newbyteorder("<")).tobytes())
    return b"".join(out)


# --- tests ---


def test_contiguous_tensors_round_trip(tmp_path: Path) -> None:
    weight = np.random.default_rng(1).standard_normal((4, 3, 2, 2)).astype(np.float32)
    steps = np.array([7], dtype=np.int64)
    path = tmp_path / "plain.pth"
    path.write_bytes(write_legacy(
        {"conv.weight": View("s0", 0, (4, 3, 2, 2), (12, 4, 2, 1)),
         "bn.num_batches_tracked": View("s1", 0, (1,), (1,))},
        {"s0": weight.ravel(), "s1": steps},
    ))
    state = read_state_dict(path)
    assert list(state) == ["conv.weight", "bn.num_batches_tracked"]
    np.testing.assert_array_equal(state["conv.weight"], weight)
    assert state["conv.weight"].dtype == np.float32
    assert state["bn.num_batches_tracked"].dtype == np.int64
    assert state["bn.num_batches_tracked"].tolist() == [7]


def test_non_contiguous_views_honour_offset_and_strides() -> None:
    storage = np.arange(24, dtype=np.float32) * 1.5
    data = write_legacy(
        {
            # (3, 4) transpose of a row-major (4, 3) block: strides (1, 3)
            "transposed": View("s", 0, (3, 4), (1, 3)),
            # rows of 3 taken every 4 elements, starting at element 5
            "offset": View("s", 5, (2, 3), (4, 1)),
            "scalar": View("s", 23, (), ()),
            "broadcast": View("s", 2, (2, 3), (0, 1)),
        },
        {"s": storage},
    )
    state = read_state_dict(data)
    np.testing.assert_array_equal(state["transposed"], storage[:12].reshape(4, 3).T)
    np.testing.assert_array_equal(state["offset"], np.array([[5, 6, 7], [9, 10, 11]]) * 1.5)
    assert state["scalar"].shape == () and float(state["scalar"]) == 23 * 1.5
    np.testing.assert_array_equal(state["broadcast"], [[3.0, 4.5, 6.0]] * 2)
    # Results own their memory: changing one must not change another view of the storage.
    assert all(array.flags.c_contiguous and array.flags.owndata for array in state.values())


def test_forbidden_global_is_refused_and_never_called(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = (b"\x80\x02" + _global("os", "system") + _tuple(_str(f"touch {marker}")) + b"R.")
    with pytest.raises(ModelError, match=r"os\.system"):
        read_state_dict(header() + evil)
    assert not marker.exists()


def test_build_opcode_cannot_touch_shared_objects() -> None:
    # GLOBAL of an allowed function, then BUILD with slot state {"pwned": 1}: a setattr
    # on whatever find_class returned, which must not be the reader's own function.
    build = (b"\x80\x02" + _global("torch._utils", "_rebuild_tensor_v2")
             + b"(N}(" + _str("pwned") + _int(1) + b"utb.")
    with pytest.raises(ModelError, match="torch checkpoint"):
        read_state_dict(header() + build)
    assert not hasattr(torch_legacy._rebuild_tensor_v2, "pwned")


def test_other_object_than_state_dict_global_is_refused() -> None:
    data = write_legacy({"w": View("s", 0, (2,), (1,))}, {"s": np.zeros(2, np.float32)},
                        object_global=("builtins", "eval"))
    with pytest.raises(ModelError, match="refusing"):
        read_state_dict(data)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda b: b[:-3], "ends inside"),
        (lambda b: b"PK\x03\x04" + b[4:], "zip"),
        (lambda b: b"", "cannot read the magic"),
        (lambda b: b"garbage that is no pickle", "cannot read the magic"),
    ],
)
def test_damaged_files_raise_model_error(mangle: Callable[[bytes], bytes], message: str) -> None:
    good = write_legacy({"w": View("s", 0, (4,), (1,))}, {"s": np.ones(4, np.float32)})
    with pytest.raises(ModelError, match=message):
        read_state_dict(mangle(good))


def test_bad_magic_and_bad_counts_and_out_of_range_views() -> None:
    storages = {"s": np.ones(4, np.float32)}
    with pytest.raises(ModelError, match="magic"):
        read_state_dict(write_legacy({"w": View("s", 0, (4,), (1,))}, storages, magic=42))
    with pytest.raises(ModelError, match="holds 3 elements, expected 4"):
        read_state_dict(write_legacy({"w": View("s", 0, (4,), (1,))}, storages,
                                     storage_counts={"s": 3}))
    huge = 2**50  # declared in the pickle and before the bytes: must not be allocated
    with pytest.raises(ModelError, match="ends inside"):
        read_state_dict(write_legacy({"w": View("s", 0, (4,), (1,))}, {"s": np.ones(4, np.float32)},
                                     storage_counts={"s": huge}, declared_numel={"s": huge}))
    with pytest.raises(ModelError, match="past the end"):
        read_state_dict(write_legacy({"w": View("s", 1, (2, 2), (2, 1))}, storages))


def test_missing_file_raises_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot open"):
        read_state_dict(tmp_path / "absent.pth")


def test_reads_the_packaged_efficientnet_lite0_weights() -> None:
    state = read_state_dict(lite_weights_path("lite0"))
    assert len(state) == 296
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.0._depthwise_conv.weight"].shape == (32, 1, 3, 3)
    assert state["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert state["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert state["_bn1.running_var"].dtype == np.float32
    assert (state["_bn1.running_var"] > 0).all()
    assert np.isfinite(state["_fc.weight"]).all()
    # The file stores the stem channels-last (strides (1, 32, 288, 96)); that the strides are
    # honoured is proven by the ImageNet predictions in test_models.py.
