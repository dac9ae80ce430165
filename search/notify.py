"""``--on-match``: run the user's command for a run that found re-uploads of watched items,
with the matches as JSON on its standard input."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
from contextlib import suppress
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from indexer.service import Service
    from indexer.store.watchlist import WatchMatch

__all__ = ["matches_payload", "notify_run", "run_on_match"]

log = logging.getLogger(__name__)


def matches_payload(run_id: int, matches: list[WatchMatch]) -> bytes:
    """The JSON the command reads: ``{"run_id": N, "count": n, "matches": [...]}``, each
    match as ``watch matches --json`` prints it."""
    return json.dumps({"run_id": run_id, "count": len(matches),
                       "matches": [m.to_json() for m in matches]},
                      ensure_ascii=False, indent=2).encode()


def run_on_match(command: str, payload: bytes, *, timeout: float,
                 env: dict[str, str] | None = None) -> str | None:
    """Run ``command`` with ``/bin/sh -c``, ``payload`` on its stdin, its output left on
    ours; None when it exits 0, else what went wrong, in one line. It runs in a session of
    its own: on timeout the whole session is killed."""
    try:
        process = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.PIPE,
                                   start_new_session=True, env={**os.environ, **(env or {})})
    except OSError as exc:
        return f"could not start it: {exc.strerror or exc}"
    try:
        process.communicate(payload, timeout=timeout)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return f"killed after {timeout:g} s (--on-match-timeout)"
    if process.returncode < 0:
        return f"killed by signal {-process.returncode}"
    if process.returncode:
        return f"exited with status {process.returncode}"
    return None


def notify_run(service: Service, run_id: int | None, command: str, *,
               timeout: float) -> tuple[int, str | None]:
    """Run ``command`` for the matches the run ``run_id`` recorded (nothing when it recorded
    none): (how many, the failure or None). A failure is returned, never raised."""
    from indexer.errors import ThumbsearchError
    from search.watch import watch_matches

    if run_id is None:
        return 0, None
    try:
        matches = watch_matches(service, run_id=run_id)
    except ThumbsearchError as exc:
        return 0, f"could not read the run's matches: {exc}"
    if not matches:
        return 0, None
    problem = run_on_match(command, matches_payload(run_id, matches), timeout=timeout,
                           env={"WATCH_RUN_ID": str(run_id),
                                "WATCH_MATCH_COUNT": str(len(matches))})
    if problem is not None:
        log.warning("the --on-match command for run %s failed: %s", run_id, problem)
    return len(matches), problem
