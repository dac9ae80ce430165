"""URLs from outside (a user's, a server's ``Location``): checked before any request is sent."""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import Iterable
from urllib.parse import SplitResult, urljoin, urlsplit

from indexer.bounds import quote
from indexer.errors import BadUrlError, HostNotAllowedError

__all__ = [
    "MAX_URL_CHARS",
    "checked_url",
    "host_allowed",
    "redirect_target",
    "target_allowed",
]

# Far above any thumbnail URL (about 50 characters) and below what servers accept (8 KB).
MAX_URL_CHARS = 4096
SCHEMES = ("http", "https")


def _unsafe(char: str) -> bool:
    # Spaces, controls (C0, DEL, C1), format characters (bidi overrides, zero width) and
    # separators are not part of a URL; a backslash is read as "/" by some parsers and
    # not by others, so the host one parser checks could differ from the one connected to.
    return char == "\\" or unicodedata.category(char)[0] in "CZ"


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:80] + "..."


def _check_text(url: str) -> None:
    if len(url) > MAX_URL_CHARS:
        raise BadUrlError(f"malformed URL {quote(url)}: longer than {MAX_URL_CHARS} characters")
    bad = next((char for char in url if _unsafe(char)), None)
    if bad is not None:
        raise BadUrlError(f"malformed URL {quote(url)}: it holds {bad!r}")


def checked_url(url: str) -> SplitResult:
    """``url`` split, when it is a well-formed http(s) URL with a host; else a one-line error.

    BadUrlError for a malformed one (too long, spaces or control characters, an
    unparsable host or port, no host), HostNotAllowedError for another scheme.

    Kept free of requests so the command line can check a URL without importing it.
    """
    _check_text(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is what raises for a bad one
    except ValueError as exc:
        raise BadUrlError(f"malformed URL {quote(url)}: {_short(str(exc))}") from None
    if parts.scheme.lower() not in SCHEMES:
        raise HostNotAllowedError(f"refusing to fetch {quote(url)}: only http(s) URLs are "
                                  "allowed")
    if not parts.hostname:
        raise BadUrlError(f"malformed URL {quote(url)}: no host")
    return parts


def target_allowed(scheme: str, host: str | None, port: int | None,
                   allowed: Iterable[str]) -> bool:
    """True when an http(s) ``host`` (and ``port``) is in ``allowed`` (host or host:port)."""
    if scheme.lower() not in SCHEMES or not host:
        return False
    host = host.lower().strip("[]")
    with_port = f"{host}:{port}" if port is not None else host
    allowed_set = {a.lower() for a in allowed}
    return with_port in allowed_set or (port is None and host in allowed_set)


def host_allowed(url: str, allowed: Iterable[str]) -> bool:
    """True when the URL is http(s) and its host (or host:port) is in ``allowed``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False  # a malformed URL is allowed nowhere
    return target_allowed(parts.scheme, parts.hostname, port, allowed)


def redirect_target(base: str, location: str | None) -> str:
    """The absolute URL a redirect from ``base`` points to; BadUrlError when it is malformed.

    A relative ``Location`` is resolved against ``base`` (RFC 9110 allows it); the
    result is checked by ``checked_url``, so a protocol-relative one is a full URL.
    """
    if location is None or not location.strip():
        raise BadUrlError(f"redirect from {quote(base)} without a Location")
    # http.client reads header bytes as Latin-1; servers send UTF-8 (requests does the same).
    with contextlib.suppress(UnicodeError):
        location = location.encode("latin-1").decode("utf-8")
    try:
        # Checked before joining: urljoin drops tabs and newlines and would hide them.
        _check_text(location)
        # A Location naming a scheme is taken whole: urljoin reads "http:///x" or "http:x"
        # as relative to an http base, where other parsers see no host or another one.
        target = location if urlsplit(location).scheme else urljoin(base, location)
        checked_url(target)
    except BadUrlError as exc:
        raise BadUrlError(f"redirect from {quote(base)} to a {exc}") from None
    except HostNotAllowedError as exc:
        raise HostNotAllowedError(f"redirect from {quote(base)}: {exc}") from None
    except ValueError as exc:
        raise BadUrlError(f"redirect from {quote(base)} to a malformed URL {quote(location)}: "
                          f"{_short(str(exc))}") from None
    return target
