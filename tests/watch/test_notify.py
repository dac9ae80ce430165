"""The --on-match command: the matches on its stdin, and every way it can fail reported."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

from indexer.store.watchlist import WatchMatch
from search.notify import matches_payload, run_on_match

MATCH = WatchMatch(id=1, name="launch", video_id="abcdefghijk", score=0.97, run_id=7,
                   found_at=datetime(2026, 12, 3, 12, 0, tzinfo=UTC), title="a copy",
                   channel_title="someone", thumbnail_url="https://i.ytimg.com/vi/x/hq.jpg",
                   watched_video_id="zyxwvutsrqp")


def test_the_command_reads_the_matches_as_json_and_sees_the_run_in_its_environment(
        tmp_path: Path) -> None:
    out = tmp_path / "got.json"
    env_out = tmp_path / "env.txt"
    problem = run_on_match(f'cat > {out}; echo "$WATCH_RUN_ID" > {env_out}',
                           matches_payload(7, [MATCH]), timeout=30,
                           env={"WATCH_RUN_ID": "7"})
    assert problem is None
    data = json.loads(out.read_text())
    assert data == {"run_id": 7, "count": 1, "matches": [MATCH.to_json()]}
    assert data["matches"][0]["video_id"] == "abcdefghijk"
    assert data["matches"][0]["watch"] == "launch"
    assert env_out.read_text().strip() == "7"


def test_a_failing_command_is_reported_in_one_line() -> None:
    assert run_on_match("exit 3", b"{}", timeout=30) == "exited with status 3"
    assert run_on_match("no-such-command-here 2>/dev/null", b"{}",
                        timeout=30) == "exited with status 127"
    assert run_on_match("kill -9 $$", b"{}", timeout=30) == "killed by signal 9"


def test_a_command_that_ignores_its_stdin_is_fine() -> None:
    assert run_on_match("true", b"x" * 1_000_000, timeout=30) is None


def test_a_hanging_command_is_killed_with_its_children(tmp_path: Path) -> None:
    marker = tmp_path / "late"
    started = time.monotonic()
    problem = run_on_match(f"(sleep 3; touch {marker}) & sleep 30", b"{}", timeout=0.5)
    assert problem == "killed after 0.5 s (--on-match-timeout)"
    assert time.monotonic() - started < 20
    time.sleep(3.5)
    assert not marker.exists()  # the background child went with the session
