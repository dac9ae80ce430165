"""Atomic writes: the old file stays whole and no temporary is left when a write fails."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

import pytest

from indexer.atomic import atomic_write, sync_directory


def _names(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def test_bytes_replace_the_file(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "er" / "file.bin"
    atomic_write(target, b"first")
    atomic_write(target, b"second")
    assert target.read_bytes() == b"second"
    assert _names(target.parent) == ["file.bin"]


def test_a_writer_streams_into_the_file(tmp_path: Path) -> None:
    target = tmp_path / "file.bin"

    def write(handle: BinaryIO) -> None:
        for chunk in (b"ab", b"cd", b"ef"):
            handle.write(chunk)

    atomic_write(target, write, durable=False)
    assert target.read_bytes() == b"abcdef"


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   KeyboardInterrupt()])
def test_a_failure_mid_write_leaves_the_old_file_whole_and_no_temporary(
        tmp_path: Path, error: BaseException) -> None:
    target = tmp_path / "file.bin"
    atomic_write(target, b"old contents")

    def write(handle: BinaryIO) -> None:
        handle.write(b"half of the new")
        handle.flush()
        raise error

    with pytest.raises(type(error)):
        atomic_write(target, write)
    assert target.read_bytes() == b"old contents"
    assert _names(tmp_path) == ["file.bin"]


def test_mode_is_set_and_the_directory_can_be_synced(tmp_path: Path) -> None:
    target = tmp_path / "model.tflite"
    atomic_write(target, b"x", mode=0o644)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    atomic_write(tmp_path / "private", b"x")
    assert stat.S_IMODE((tmp_path / "private").stat().st_mode) == 0o600
    sync_directory(tmp_path)


def test_an_unusable_directory_raises_oserror_and_leaves_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_bytes(b"not a directory")
    with pytest.raises(OSError):
        atomic_write(blocker / "file.bin", b"data")
    assert _names(tmp_path) == ["a-file"]
