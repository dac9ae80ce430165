"""The one exception tree of thumbsearch (drawn in docs/architecture.md); the CLI maps each
class to its exit code."""

from __future__ import annotations

import errno

__all__ = [
    "ApiKeyInvalidError",
    "ApiRedirectError",
    "ApiUnreachableError",
    "BadSettingError",
    "BadUrlError",
    "ClusterError",
    "ConfigError",
    "DiskFullError",
    "DownloadBrokenError",
    "EmptyCorpusError",
    "FetchError",
    "HostNotAllowedError",
    "ImageDecodeError",
    "ImagePathError",
    "InputError",
    "InputFileError",
    "MalformedAnswerError",
    "MissingApiKeyError",
    "ModelConversionError",
    "ModelError",
    "ModelMismatchError",
    "NotFoundError",
    "QueriesFileError",
    "QuotaExceededError",
    "StoreError",
    "ThumbnailMissingError",
    "ThumbsearchError",
    "UnknownModelError",
    "UnusablePathError",
    "UsageError",
    "VectorIndexError",
    "VideoIdError",
    "VideoNotFoundError",
    "WatchNotFoundError",
    "WriterBusyError",
    "YouTubeError",
    "disk_full",
    "one_line",
]


class ThumbsearchError(Exception):
    """Root of every error thumbsearch raises on purpose."""

    exit_code: int = 1


class ConfigError(ThumbsearchError):
    """A setting is missing or invalid."""


class BadSettingError(ConfigError):
    """A setting whose value is not one of the names it accepts."""

    exit_code = 2


class MissingApiKeyError(ConfigError):
    """YOUTUBE_API_KEY is needed and not set."""


class UnknownModelError(ConfigError):
    """The model name is not one thumbsearch knows."""


class UnusablePathError(ConfigError):
    """The data directory or the lock file cannot be created, written or used."""


class InputError(ThumbsearchError):
    """An argument given by the user cannot be used."""


class UsageError(InputError):
    """An option, setting or parameter that is malformed or out of its range."""

    exit_code = 2


class InputFileError(InputError):
    """A file given by the user that is not a regular file or is larger than its limit."""


class VideoIdError(InputError):
    """Text that is neither a video id nor a YouTube URL."""


class ImagePathError(InputError):
    """A path that does not exist or is not an image file."""


class QueriesFileError(InputError):
    """A queries file that cannot be read or holds an invalid entry."""


class NotFoundError(ThumbsearchError):
    """The thing asked about is not there."""


class WatchNotFoundError(NotFoundError):
    """No watched item has the name given."""


class EmptyCorpusError(NotFoundError):
    """No vectors are stored yet."""


class VideoNotFoundError(NotFoundError):
    """A video that is neither stored nor has a thumbnail."""


class YouTubeError(ThumbsearchError):
    """The YouTube Data API refused a call or failed."""


class ApiKeyInvalidError(YouTubeError):
    """The API key was rejected."""


class QuotaExceededError(YouTubeError):
    """The day's quota is spent; stop until it resets."""

    exit_code = 3


class ApiUnreachableError(YouTubeError):
    """The API endpoint could not be reached."""


class MalformedAnswerError(YouTubeError):
    """An API answer page that is not the documented shape: nothing of it is used."""


class ApiRedirectError(YouTubeError):
    """The API endpoint redirected off its own scheme, host and port, or malformed."""


class FetchError(ThumbsearchError):
    """An image could not be downloaded."""


class HostNotAllowedError(FetchError):
    """The image URL's host is not in the allowed list."""


class ThumbnailMissingError(FetchError):
    """The thumbnail host answered 404 (a grey placeholder image)."""


class BadUrlError(FetchError):
    """A URL that cannot be fetched as written: malformed, too long or without a host."""


class DownloadBrokenError(FetchError):
    """A download failed in a way a retry may fix: 5xx, reset, timeout, cut-off body."""


class ImageDecodeError(ThumbsearchError):
    """Bytes that do not decode to a usable image."""


class ModelError(ThumbsearchError):
    """The embedding model cannot be built or run."""


class ModelConversionError(ModelError):
    """The model cannot be converted to a ``.tflite`` file for the LiteRT runtime."""


class StoreError(ThumbsearchError):
    """The metadata database failed."""


class DiskFullError(StoreError):
    """The disk is full (or a file size limit was hit) while writing."""


class WriterBusyError(ThumbsearchError):
    """Another ingest run holds the writer lock."""


class ClusterError(ThumbsearchError):
    """Ray is not installed, or the Ray cluster cannot be reached or failed."""


class VectorIndexError(ThumbsearchError):
    """The FAISS index cannot be read, written or searched."""


class ModelMismatchError(VectorIndexError):
    """The index on disk was built by another model or dimension."""


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (its class name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


# errno values that mean "no room to write": full disk, quota, file size limit.
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_DISK_FULL_TEXTS = ("database or disk is full", "no space left on device", "disk quota exceeded")


def disk_full(exc: BaseException, what: str, path: object) -> DiskFullError | None:
    """A DiskFullError for ``exc`` (naming ``path``) when it means the disk is full, else None."""
    seen: BaseException | None = exc
    for _ in range(8):  # the exception and what caused it
        if seen is None:
            break
        if isinstance(seen, OSError) and seen.errno in _DISK_FULL_ERRNOS:
            break
        if any(text in str(seen).lower() for text in _DISK_FULL_TEXTS):
            break
        seen = seen.__cause__ or seen.__context__
    else:
        return None
    if seen is None:
        return None
    return DiskFullError(f"no space left on device while {what}: {path}; "
                         "free some space and run the command again (nothing stored was lost)")
