"""Video ids are strict: all of the text is 11 characters of [A-Za-z0-9_-], nothing more.

A trailing newline (``$`` matches before one) or a malformed URL is refused with one
short line, from the command line and the id list reader alike.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from urllib.parse import quote as quote_url

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from indexer.errors import VideoIdError
from indexer.ingest.local import YTDLP_NAME
from indexer.service import build_service
from indexer.settings import Settings
from search.cli import app
from search.idlist import parse_id_lines, youtube_ids
from search.ids import parse_video_ref
from search.web import create_app
from tests.fakes.youtube import FakeYouTube

runner = CliRunner()
ID = "dQw4w9WgXcQ"

NEWLINE_REFS = [
    f"https://www.youtube.com/watch?v={ID}%0A",
    f"https://www.youtube.com/watch?v={ID}%0a&t=3",
    f"https://youtu.be/{ID}%0A",
    f"https://www.youtube.com/watch?v={ID}%0D",
    f"https://www.youtube.com/watch?v=%0A{ID}",
    f"{ID}\n",
    f"{ID}\r\n",
    f"\n{ID}",
    f"{ID}\x00",
]


@pytest.mark.parametrize("text", NEWLINE_REFS)
def test_an_id_with_a_line_break_is_refused(text: str) -> None:
    with pytest.raises(VideoIdError):
        parse_video_ref(text)


MALFORMED_URLS = [
    f"http://[::1/watch?v={ID}",
    f"https://[::1]x/watch?v={ID}",
    f"https://www.youtube.com:99999/watch?v={ID}",
    "http://[" + "1" * 5000,
    f"https://[v1.fe]/watch?v={ID}",
]


@pytest.mark.parametrize("text", MALFORMED_URLS)
def test_a_malformed_url_is_a_video_id_error_quoted_short(text: str) -> None:
    with pytest.raises(VideoIdError) as caught:
        parse_video_ref(text)
    assert len(str(caught.value)) < 250


@pytest.mark.parametrize("text", [MALFORMED_URLS[0], NEWLINE_REFS[0], MALFORMED_URLS[3]])
def test_similar_with_a_malformed_reference_is_one_line(text: str) -> None:
    result = runner.invoke(app, ["similar", text])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1, result.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and len(lines[0]) < 250, lines
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit), repr(result.exception)


def test_the_id_list_reader_skips_ids_with_line_breaks(tmp_path: Path) -> None:
    listed = parse_id_lines([f"https://www.youtube.com/watch?v={ID}%0A",
                             f"http://[::1/watch?v={ID}", ID])
    found, bad = youtube_ids(listed, "ids.txt")
    assert found == [ID]
    assert [b.line for b in bad] == [1, 2]


def test_add_ids_never_asks_the_thumbnail_host_for_an_id_with_a_newline(
        youtube_env: FakeYouTube, isolated_env: Path, tmp_path: Path) -> None:
    good = youtube_env.searches["cats"][0]
    ids = tmp_path / "ids.txt"
    ids.write_text(f"https://www.youtube.com/watch?v={good}%0A\n"
                   f"http://[::1/watch?v={good}\n", encoding="utf-8")
    result = runner.invoke(app, ["add-ids", str(ids), "--no-details", "--json"])
    assert result.exit_code == 1, result.output
    assert [r for r in youtube_env.requests if r.server == "thumbnails"] == []
    db = isolated_env / "thumbsearch.sqlite3"
    if db.exists():
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM gone_videos").fetchone()[0] == 0
    assert "no YouTube video id" in result.output or "error:" in result.output
    assert json.dumps(result.output).count("\\n") <= 2


@pytest.mark.parametrize("stem", [f"A title [{ID}]\n", f"A title [{ID}]\r"])
def test_a_ytdlp_name_with_a_line_break_holds_no_id(stem: str) -> None:
    assert YTDLP_NAME.match(stem) is None


@pytest.mark.parametrize("ref", ["http://[::1/watch?v=dQw4w9WgXcQ",
                                 "https://www.youtube.com/watch?v=dQw4w9WgXcQ%0A"])
def test_the_web_api_answers_a_malformed_reference_with_an_error_not_a_500(
        settings: Settings, ref: str) -> None:
    with build_service(settings) as service:
        client = TestClient(create_app(lambda: service), raise_server_exceptions=False)
        answer = client.get("/api/similar/" + quote_url(ref, safe=""))
        assert 400 <= answer.status_code < 500, answer.text
        assert len(answer.text) < 400
