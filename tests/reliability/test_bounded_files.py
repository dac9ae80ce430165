"""Files from a user are bounded before they are read: /dev/zero, FIFOs and huge files.

Each case runs the real ``thumbsearch`` command in a process of its own, so its peak
memory can be read back (``os.wait4``); its address space is capped so that a reader
without a bound fails fast instead of eating the machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.service import build_service
from indexer.settings import (
    DEFAULT_MAX_IDS_FILE_BYTES,
    DEFAULT_MAX_IMAGE_BYTES,
    DEFAULT_MAX_QUERIES_FILE_BYTES,
    Settings,
)
from tests.fakes.corpus import record_figure, seed_corpus

EXE = Path(sys.executable).with_name("thumbsearch")
ADDRESS_CAP = 3 << 30  # the child's address space: an unbounded read dies here
PEAK_BOUND_KB = 200 * 1024  # a refused file costs no more than the command's own imports
HANG_GUARD_S = 120  # only against a hang; no timing is asserted

# (name, arguments with {src} for the file, the kind's limit). "-" reads the file as stdin.
KINDS: list[tuple[str, list[str], int]] = [
    ("add-ids", ["add-ids", "{src}"], DEFAULT_MAX_IDS_FILE_BYTES),
    ("add-ids stdin", ["add-ids", "-"], DEFAULT_MAX_IDS_FILE_BYTES),
    ("similar --ids-file", ["similar", "--ids-file", "{src}"], DEFAULT_MAX_IDS_FILE_BYTES),
    ("similar --ids-file stdin", ["similar", "--ids-file", "-"], DEFAULT_MAX_IDS_FILE_BYTES),
    ("ingest --queries-file", ["ingest", "--queries-file", "{src}"],
     DEFAULT_MAX_QUERIES_FILE_BYTES),
    ("schedule", ["schedule", "{src}"], DEFAULT_MAX_QUERIES_FILE_BYTES),
    ("add", ["add", "{src}"], DEFAULT_MAX_IMAGE_BYTES),
    ("similar --image", ["similar", "--image", "{src}"], DEFAULT_MAX_IMAGE_BYTES),
]
SOURCES = ("dev-zero", "fifo", "3x-limit")


# A small go-between runs the command and reports its peak: a process forked from
# pytest itself would inherit pytest's own resident size as its high-water mark.
_MEASURE = """
import os, resource, sys
pid = os.fork()
if pid == 0:
    cap = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    os.execv(sys.argv[3], sys.argv[3:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[2], "w") as out:
    out.write(f"{os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}")
"""


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A home with a small stored corpus, so `similar` gets as far as reading its input."""
    path = tmp_path_factory.mktemp("bounded") / "home"
    saved = os.environ.get("THUMBSEARCH_HOME")
    os.environ["THUMBSEARCH_HOME"] = str(path)
    try:
        with build_service(Settings.from_env()) as service:
            seed_corpus(service, 5)
    finally:
        if saved is None:
            del os.environ["THUMBSEARCH_HOME"]
        else:
            os.environ["THUMBSEARCH_HOME"] = saved
    yield path


def run_capped(args: list[str], home: Path, stdin: Path | None = None) -> tuple[int, str, int]:
    """Exit code, stderr and peak resident memory (kB) of ``thumbsearch ARGS``."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("THUMBSEARCH_", "YOUTUBE_"))}
    env["THUMBSEARCH_HOME"] = str(home)
    env["PYTHONPATH"] = os.environ.get("PYTHONPATH", "")
    with open(stdin or os.devnull, "rb") as given, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as report:
        child = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _MEASURE, str(ADDRESS_CAP), report.name,
             str(EXE), *args], stdin=given, stdout=subprocess.DEVNULL, stderr=err, env=env,
            start_new_session=True)
        try:
            child.wait(timeout=HANG_GUARD_S)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)  # the command too, not only the go-between
            child.wait()
        err.seek(0)
        code, peak_kb = (int(word) for word in report.read().split() or ("-9", "0"))
        return code, err.read().decode("utf-8", "replace"), peak_kb


def _source(kind_limit: int, source: str, folder: Path) -> Path:
    if source == "dev-zero":
        return Path("/dev/zero")
    path = folder / "input.jpg"
    if source == "fifo":
        os.mkfifo(path)
    else:
        with path.open("wb") as handle:
            handle.truncate(3 * kind_limit)  # sparse: costs no disk
    return path


# A FIFO as stdin is the shell's own pipe, read up to its limit like /dev/zero there.
CASES = [(name, args, limit, source) for name, args, limit in KINDS for source in SOURCES
         if not (source == "fifo" and "-" in args)]


@pytest.mark.parametrize(("name", "args", "limit", "source"), CASES,
                         ids=[f"{c[0]} {c[3]}" for c in CASES])
def test_an_unreadable_or_huge_input_file_is_one_line_with_bounded_memory(
        home: Path, tmp_path: Path, name: str, args: list[str], limit: int,
        source: str) -> None:
    path = _source(limit, source, tmp_path)
    stdin = path if "-" in args else None
    code, stderr, peak_kb = run_capped([a.replace("{src}", str(path)) for a in args], home,
                                       stdin)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code not in (0, -9), (code, stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr[-2000:]
    assert len(lines[0]) < 400, lines[0][:400]
    assert peak_kb < PEAK_BOUND_KB, f"{name} on {source}: peak {peak_kb} kB"
    if stdin is None and source != "3x-limit":
        assert "not a regular file" in lines[0]
    else:
        assert "larger than" in lines[0]
    record_figure(f"bounded_input {name} {source} peak_mb", round(peak_kb / 1024, 1))
