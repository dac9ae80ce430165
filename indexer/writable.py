"""Paths thumbsearch writes (home, lock file, caches, index): why one cannot be used, in words."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from indexer.errors import DiskFullError, UnusablePathError, disk_full

__all__ = ["HOME_FIX", "check_writable_dir", "path_problem", "unusable_path"]

HOME_FIX = "make it writable, or set THUMBSEARCH_HOME to a writable directory"
_REASONS = {
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "not permitted (the file or directory is immutable or protected)",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.EISDIR: "it is a directory, not a file",
    errno.EEXIST: "a file is in the way where a directory should be",
    errno.ENOENT: "a part of the path does not exist",
    errno.ELOOP: "too many levels of symbolic links",
    errno.ENAMETOOLONG: "the path is too long",
}


def path_problem(exc: OSError) -> str:
    """Why an OSError stopped a write, in words.

    Root is not stopped by file modes, so what stops a write here is the file system (read
    only), an immutable flag, or something of the wrong kind in the way: a file where a
    directory should be, or the other way round.
    """
    return _REASONS.get(exc.errno or 0, exc.strerror or str(exc))


def unusable_path(exc: OSError, what: str, path: Path,
                  fix: str = HOME_FIX) -> DiskFullError | UnusablePathError:
    """The one-line error for ``exc`` while using ``path`` (``what``: "the lock file")."""
    full = disk_full(exc, f"writing {what}", path)
    if full is not None:
        return full
    return UnusablePathError(f"cannot use {what} {path}: {path_problem(exc)}; {fix} "
                             "(nothing stored was changed)")


def check_writable_dir(path: Path, what: str, fix: str = HOME_FIX) -> None:
    """Create ``path`` (private) if missing; UnusablePathError unless files can be made in it."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise unusable_path(exc, what, path, fix) from exc
    if not path.is_dir():
        raise unusable_path(OSError(errno.ENOTDIR, "not a directory"), what, path, fix)
    # access(2) reports a read-only file system (EROFS) and an immutable directory (EPERM)
    # to root too, which file modes do not stop.
    if not os.access(path, os.W_OK | os.X_OK):
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            code = errno.EROFS
        else:
            code = errno.EPERM if os.geteuid() == 0 else errno.EACCES
        raise unusable_path(OSError(code, os.strerror(code)), what, path, fix)
