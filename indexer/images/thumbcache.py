"""A content-addressed cache of every thumbnail ingested, so other models can re-embed offline."""

from __future__ import annotations

import hashlib
from pathlib import Path

from indexer.atomic import atomic_write
from indexer.errors import StoreError, disk_full
from indexer.writable import path_problem

__all__ = ["ThumbnailCache"]


class ThumbnailCache:
    """Image bytes stored under their SHA-256: ``root/ab/abcdef...``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, digest: str) -> Path:
        """Where the bytes with this digest live."""
        return self.root / digest[:2] / digest

    def put(self, data: bytes) -> str:
        """Store ``data`` (once) and return its hex SHA-256."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.exists():
            return digest
        try:
            atomic_write(target, data, durable=False)  # a cache: not worth an fsync a thumbnail
        except OSError as exc:
            full = disk_full(exc, "writing the thumbnail cache", self.root)
            if full is not None:
                raise full from exc
            raise StoreError(f"cannot write the thumbnail cache {self.root}: "
                             f"{path_problem(exc)}; make it writable, or set THUMBSEARCH_HOME "
                             "to a writable directory (nothing stored was lost)") from exc
        return digest

    def get(self, digest: str) -> bytes | None:
        """The cached bytes, or None when absent."""
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            return None
