"""The thumbnail cache: bytes under their SHA-256, written once, atomically, errors in one line."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from indexer.errors import StoreError
from indexer.images.thumbcache import ThumbnailCache


def test_bytes_are_kept_under_their_digest_once(tmp_path: Path) -> None:
    cache = ThumbnailCache(tmp_path / "thumbs")
    digest = cache.put(b"jpeg bytes")
    assert digest == hashlib.sha256(b"jpeg bytes").hexdigest()
    assert cache.path(digest) == tmp_path / "thumbs" / digest[:2] / digest
    assert cache.get(digest) == b"jpeg bytes"
    before = cache.path(digest).stat().st_mtime_ns
    assert cache.put(b"jpeg bytes") == digest  # again: nothing written
    assert cache.path(digest).stat().st_mtime_ns == before
    assert [p.name for p in (tmp_path / "thumbs").rglob("*") if p.is_file()] == [digest]


def test_an_absent_digest_is_none(tmp_path: Path) -> None:
    assert ThumbnailCache(tmp_path / "none").get("ab" * 32) is None


def test_a_cache_that_cannot_be_written_is_one_store_error_and_leaves_nothing(
        tmp_path: Path) -> None:
    root = tmp_path / "thumbs"
    root.write_text("a file where the cache should be")
    with pytest.raises(StoreError, match="cannot write the thumbnail cache") as caught:
        ThumbnailCache(root).put(b"x")
    assert "\n" not in str(caught.value) and str(root) in str(caught.value)
    assert [p.name for p in tmp_path.iterdir()] == ["thumbs"]
