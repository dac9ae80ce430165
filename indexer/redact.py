"""Secrets kept out of messages and logs: URL passwords, secret query parameters, known values."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote, unquote_plus

__all__ = ["MASK", "is_secret_name", "mask_url", "scrub", "url_secrets"]

MASK = "***"
_SECRET_NAMES = frozenset({
    "password", "passwd", "pwd", "pass", "secret", "token", "key", "apikey", "api_key",
    "access_token", "refresh_token", "id_token", "auth", "authorization", "credentials",
    "sslpassword", "signature", "sig", "private_key", "client_secret", "session",
})
_SECRET_ENDINGS = ("password", "passwd", "secret", "token", "_key", "apikey")
_MIN_SECRET = 3  # shorter values would mask ordinary words of a message
# scheme://user:password@ (the password runs to the next "@", as SQLAlchemy parses it)
_USERINFO = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s?#]*):(?P<pw>[^@\s]*)@")
# name=value in a URL query (after "?", "&" or ";"); other text is left alone, so that
# "export YOUTUBE_API_KEY=..." in a message stays readable
_PAIR = re.compile(r"(?<=[?&;])(?P<name>[A-Za-z0-9_.%\-]+)(?P<eq>=)(?P<value>[^\s&;#,'\")]*)")


def is_secret_name(name: str) -> bool:
    """Whether a parameter called ``name`` carries a secret (password, token, key ...)."""
    lowered = unquote_plus(name).strip().lower().replace("-", "_")
    return lowered in _SECRET_NAMES or lowered.endswith(_SECRET_ENDINGS)


def _mask_pair(match: re.Match[str]) -> str:
    if not is_secret_name(match["name"]) or not match["value"]:
        return match[0]
    return f"{match['name']}{match['eq']}{MASK}"


def mask_url(text: str) -> str:
    """``text`` (a URL, or a message holding URLs) with passwords and secret parameters masked.

    A URL can carry a secret in its userinfo (``scheme://user:PASSWORD@host``) or in a query
    parameter (``?password=...``, ``&sslpassword=...``, ``&api_key=...``; names compared
    case-insensitively, percent-decoded). ``mask_url`` hides both; ``url_secrets`` lists the
    values so that text a driver wrote about them (which may repeat the DSN, or the value
    alone) can be scrubbed with ``scrub``.
    """
    masked = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", text)
    return _PAIR.sub(_mask_pair, masked)


def url_secrets(url: str) -> set[str]:
    """The secret values ``url`` carries, as written and percent-decoded."""
    found: set[str] = set()
    for match in _USERINFO.finditer(url):
        found.add(match["pw"])
    query = url.partition("?")[2]
    for part in re.split(r"[&;]", query):
        name, eq, value = part.partition("=")
        if eq and is_secret_name(name):
            found.add(value)
    return {form for value in found for form in (value, unquote(value), unquote_plus(value))
            if len(form) >= _MIN_SECRET}


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with URLs masked and every one of ``secrets`` replaced (case-insensitively)."""
    out = mask_url(text)
    for secret in sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len,
                         reverse=True):
        out = re.sub(re.escape(secret), MASK, out, flags=re.IGNORECASE)
    return out
