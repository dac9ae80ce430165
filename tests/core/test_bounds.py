"""The checks where outside data enters: regular files within a limit, numbers in range."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from indexer.bounds import (
    bounded_float,
    bounded_int,
    hash_regular_file,
    quote,
    read_regular_file,
)
from indexer.errors import InputFileError, UsageError


def test_a_device_is_refused_before_anything_is_read() -> None:
    with pytest.raises(InputFileError, match="not a regular file"):
        read_regular_file(Path("/dev/zero"), 1024, "ids file", "THUMBSEARCH_X")


def test_a_fifo_without_a_writer_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(InputFileError, match="not a regular file"):
        hash_regular_file(fifo, 1024, "image", "THUMBSEARCH_X")


def test_a_file_over_its_limit_names_the_setting(tmp_path: Path) -> None:
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 2048)
    with pytest.raises(InputFileError, match="THUMBSEARCH_X"):
        read_regular_file(big, 1024, "ids file", "THUMBSEARCH_X")
    assert read_regular_file(big, 2048, "ids file", "THUMBSEARCH_X") == b"x" * 2048
    digest, size = hash_regular_file(big, 4096, "image", "THUMBSEARCH_X")
    assert size == 2048 and len(digest) == 64


def test_directories_and_missing_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="directory"):
        read_regular_file(tmp_path, 1024, "ids file", "X")
    with pytest.raises(InputFileError, match="does not exist"):
        read_regular_file(tmp_path / "nope", 1024, "ids file", "X")


@pytest.mark.parametrize("text", ["99999999999999999999", "-1", "1e3", "", "x" * 5000])
def test_numbers_out_of_range_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        bounded_int(text, "--limit", 0, 1000)
    assert caught.value.exit_code == 2
    assert len(str(caught.value)) < 200


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e400", "2"])
def test_floats_must_be_finite_and_in_range(text: str) -> None:
    with pytest.raises(UsageError):
        bounded_float(text, "--wait", 0.0, 1.0)


def test_quote_cuts_long_input() -> None:
    assert quote("abc") == "'abc'"
    long = quote("y" * 50_000)
    assert len(long) < 120 and "50000 characters" in long
