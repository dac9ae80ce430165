"""A process that frees large blocks gives their memory back (glibc's mmap threshold fixed)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024
KEPT = 20 * 200_000  # the small blocks the churn keeps: growth that is not waste

# A 16 MB block freed (glibc then raises its mmap threshold to its size), then 4-9 MB
# blocks freed in turn, each after a small long-lived one was allocated: the way reopening
# a growing index goes. Prints how far the resident set grew.
_CHURN = textwrap.dedent("""
    import sys
    from tests.fakes.lookup_child import rss
    if sys.argv[1] == "fixed":
        from indexer.memory import keep_large_blocks_mapped
        assert keep_large_blocks_mapped()
    start = rss()
    big = b"x" * (16 * 1024 * 1024)
    del big
    keep = []
    for step in range(20):
        block = b"x" * (4 * 1024 * 1024 + step * 256 * 1024)
        keep.append(b"y" * 200_000)
        del block
    print(rss() - start)
""")


def _growth(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", _CHURN, mode], check=True, cwd=ROOT,
                         capture_output=True, text=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_fixed_threshold_returns_freed_large_blocks() -> None:
    fixed = _growth("fixed")
    assert fixed < KEPT + MB
    # Without it the same churn keeps several freed blocks resident: the test measures.
    assert _growth("default") > fixed + 5 * MB


def test_build_service_fixes_the_threshold(isolated_env: Path) -> None:
    from indexer.memory import keep_large_blocks_mapped
    from indexer.service import build_service
    from indexer.settings import Settings
    from tests.fakes.embedder import TinyEmbedder

    keep_large_blocks_mapped.cache_clear()
    build_service(Settings.from_env(), embedder=TinyEmbedder()).close()
    assert keep_large_blocks_mapped.cache_info().currsize == 1
