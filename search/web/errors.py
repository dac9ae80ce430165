"""Errors as the web API answers them: one shape, one status per kind, no server paths."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from indexer.errors import (
    FetchError,
    HostNotAllowedError,
    ImageDecodeError,
    InputError,
    NotFoundError,
    ThumbsearchError,
    UsageError,
    YouTubeError,
)

__all__ = [
    "ERROR_TEXT",
    "ErrorAnswer",
    "UploadTooLargeError",
    "error_responses",
    "public_stats",
    "scrub_paths",
    "status_for",
]


class UploadTooLargeError(InputError):
    """An uploaded image larger than the configured limit."""


class ErrorAnswer(BaseModel):
    """The body of every error answer."""

    model_config = ConfigDict(extra="forbid")
    error: str


ERROR_TEXT = {
    400: "Bad input: not a video id or URL, not an image, an unparsable body, or a Host "
         "header that does not name this server",
    403: "A write sent from another site's page (its Origin or Sec-Fetch-Site header)",
    404: "Unknown video or watched item, no thumbnail, or an empty corpus",
    413: "The upload is larger than the image size limit",
    422: "A parameter is missing, malformed or out of range",
    500: "The database, the index or the model failed",
    502: "The thumbnail host failed",
}


def status_for(exc: ThumbsearchError) -> int:
    """The HTTP status code that answers an error.

    Every error is ``{"error": message}``. The status comes from the exception tree:

        413  UploadTooLargeError (an upload or request body over the image size limit)
        422  UsageError and request validation (a parameter malformed or out of range)
        400  any other InputError, ImageDecodeError, HostNotAllowedError, a Host header
             this server does not answer, a body that cannot be parsed
        403  a POST or DELETE from another site's page (``guard.cross_site``)
        404  NotFoundError (unknown video or watched item, empty corpus) and unknown routes
        405  a method a route does not take
        502  FetchError, YouTubeError (an upstream host failed)
        500  anything else (database, index, model); unexpected exceptions show only their kind
    """
    if isinstance(exc, UploadTooLargeError):
        return 413
    if isinstance(exc, UsageError):
        return 422
    if isinstance(exc, HostNotAllowedError | InputError | ImageDecodeError):
        return 400
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, FetchError | YouTubeError):
        return 502
    return 500


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error statuses, each with ErrorAnswer."""
    return {code: {"model": ErrorAnswer, "description": ERROR_TEXT[code]} for code in codes}


# An absolute path where one starts: at the start, after a space, quote, bracket or `=`,
# or after `:///` (a sqlite URL). URLs (`https://host/...`) are not matched.
_ABSOLUTE = re.compile(r"""(?:^|(?<=[\s'"(\[=])|(?<=:///))/[^\s'"/]+(?:/[^\s'"/]*)*""")


def _homes(home: Path | None) -> list[str]:
    if home is None:
        return []
    forms = {str(home)}
    with contextlib.suppress(OSError):
        forms.add(str(home.resolve()))
    # Only absolute forms: a relative home like "h" would also match inside other words.
    absolute = {f.rstrip("/") for f in forms if f.startswith("/")}
    return sorted((f for f in absolute if f), key=len, reverse=True)


def scrub_paths(text: str, home: Path | None) -> str:
    """``text`` with paths under ``home`` made relative to it and other absolute paths cut
    to their last part, so no answer tells a client where the server keeps its files."""
    for form in _homes(home):
        text = text.replace(form + "/", "").replace(form, ".")
    return _ABSOLUTE.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], text)


def public_stats(stats: dict[str, Any], home: Path) -> dict[str, Any]:
    """``stats --json`` without server paths: the home by its name, files relative to it."""

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return scrub_paths(value, home)
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return {k: Path(v).name if k == "home" else clean(v) for k, v in stats.items()}
