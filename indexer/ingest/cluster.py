"""Ray cluster addresses: which forms ``add-ids --ray`` takes, and a quick reachability check."""

from __future__ import annotations

import re
import socket

from indexer.bounds import quote
from indexer.errors import ClusterError, InputError

__all__ = ["CONNECT_TIMEOUT", "LOCAL", "check_address", "is_ray_address"]

#: The address meaning "start a local Ray for this run".
LOCAL = "local"
CONNECT_TIMEOUT = 5.0  # seconds to reach a cluster's address before giving up
_HOST_PORT = re.compile(r"^(?:ray://)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$")


def is_ray_address(text: str) -> bool:
    """True for ``HOST:PORT``, ``ray://HOST:PORT``, ``auto`` and ``local``."""
    return text in ("auto", LOCAL) or _HOST_PORT.match(text) is not None


def check_address(address: str) -> None:
    """Refuse an address that is not a Ray address, or whose port nothing answers on.

    One TCP connection, given up after CONNECT_TIMEOUT, instead of Ray's own attempts,
    which go on for minutes. ``auto`` and ``local`` are left to Ray.

    Light on purpose (no Ray, no NumPy): the command line reads its arguments with it.
    """
    if address in ("auto", LOCAL):
        return
    match = _HOST_PORT.match(address)
    if match is None or not 0 < int(match.group(1)) < 65536:
        raise InputError(f"{quote(address)} is not a Ray address: give HOST:PORT (the head node's "
                         "GCS port, 6379 by default), ray://HOST:PORT or auto")
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
        if isinstance(exc, TimeoutError):
            reason = f"no answer within {CONNECT_TIMEOUT:g} s"
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {reason}") from exc
