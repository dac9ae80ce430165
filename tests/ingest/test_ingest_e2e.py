"""The real CLI against fake YouTube servers on loopback, with the real model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from indexer.settings import DEFAULT_MODEL
from search.cli import app
from tests.fakes.youtube import FakeYouTube, photo_catalogue

pytestmark = pytest.mark.slow

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def run_json(*args: str) -> Any:
    code, output = run(*args, "--json")
    assert code == 0, output
    return json.loads(output)


def test_ingest_stores_links_and_never_fetches_twice(youtube_env: FakeYouTube) -> None:
    fake = youtube_env
    first = run_json("ingest", "cats", "space")
    assert first["queries"] == 2 and first["pages"] == 2
    assert first["new"] == len(fake.searches["cats"]) + len(fake.searches["space"])
    assert first["known"] == 0 and first["failed"] == []
    # One videos.list call gives the 12 new videos their details (50 ids a call).
    assert first["api_calls"] == {"search": 2, "videos": 1}
    assert fake.search_calls == 2 and fake.videos_calls == 1
    fetched = sum(fake.thumbnail_requests.values())
    assert fetched == first["new"]

    # "nasa" finds a subset of "space": all known, nothing downloaded or embedded again.
    again = run_json("ingest", "nasa", "cats")
    assert again["new"] == 0
    assert again["known"] == len(fake.searches["nasa"]) + len(fake.searches["cats"])
    assert sum(fake.thumbnail_requests.values()) == fetched

    stats = run_json("stats")
    assert stats["videos"] == stats["vectors"] == first["new"]
    assert stats["queries"] == 3
    assert stats["index"]["size"] == first["new"]
    assert stats["dim"] == 1280 and stats["model"] == DEFAULT_MODEL


def test_search_request_parameters(youtube_env: FakeYouTube) -> None:
    run_json("ingest", "travel", "--per-page", "4")
    search = [r for r in youtube_env.requests if r.path.endswith("/search")]
    assert search
    first = search[0]
    assert first.param("type") == "video" and first.param("part") == "snippet"
    assert first.param("maxResults") == "4" and first.param("q") == "travel"
    assert first.param("key") == youtube_env.api_key


def test_paging_follows_next_page_token_up_to_the_limit(youtube_env: FakeYouTube) -> None:
    summary = run_json("ingest", "reuploads", "--pages", "3", "--per-page", "20")
    assert summary["pages"] == 3
    assert summary["new"] == 60
    tokens = [r.param("pageToken") for r in youtube_env.requests if r.path.endswith("/search")]
    assert tokens[0] is None and all(tokens[1:])
    short = run_json("ingest", "cats", "--pages", "5")
    assert short["pages"] == 1  # no nextPageToken: stop early, no wasted call


def test_failed_thumbnails_are_listed_and_the_rest_goes_in(youtube_env: FakeYouTube) -> None:
    code, output = run("ingest", "coffee", "--json")
    assert code == 0, output
    summary = json.loads(output)
    videos = {v.video_id: v for v in photo_catalogue()[0]}
    failed = {f["video_id"]: f["reason"] for f in summary["failed"]}
    missing = [v for v in failed if videos[v].thumbnail_missing]
    corrupt = [v for v in failed if videos[v].corrupt_thumbnail]
    assert len(missing) == 1 and "404" in failed[missing[0]]
    assert len(corrupt) == 1 and "HTML" in failed[corrupt[0]]
    listed = [v for v in youtube_env.searches["coffee"] if not videos[v].deleted]
    assert summary["new"] == len(listed) - 2
    human_code, human = run("ingest", "coffee")
    assert human_code == 0
    assert f"failed {len(failed)}," in human and "404" in human


def test_titles_are_unescaped(youtube_env: FakeYouTube) -> None:
    run_json("ingest", "cats")
    original = youtube_env.searches["cats"][0]
    result = run_json("similar", youtube_env.searches["cats"][1], "-k", "5")
    titles = {r["video_id"]: r["title"] for r in result["results"]}
    assert "'" in titles[original] and "&" in titles[original]
    assert "&#39;" not in titles[original] and "&amp;" not in titles[original]


def test_similar_finds_reuploads_of_the_same_photo(youtube_env: FakeYouTube) -> None:
    run_json("ingest", "space", "cats", "travel", "photography")
    for query in ("cats", "travel"):
        ids = youtube_env.searches[query]
        original = ids[0]
        result = run_json("similar", original, "-k", "2")
        assert result["query"] == {"video_id": original}
        assert [r["rank"] for r in result["results"]] == [1, 2]
        assert original not in [r["video_id"] for r in result["results"]]
        # The two re-uploads of the same photo come first.
        assert {r["video_id"] for r in result["results"]} == set(ids[1:3])
        scores = [r["score"] for r in result["results"]]
        assert scores == sorted(scores, reverse=True) and 0 < scores[-1] <= 1.0


def test_similar_accepts_urls_and_dash_ids(youtube_env: FakeYouTube) -> None:
    run_json("ingest", "nasa")
    dash = next(i for i in youtube_env.searches["nasa"] if i.startswith("-"))
    code, output = run("similar", "-k", "3", "--json", "--", dash)
    assert code == 0, output
    by_id = json.loads(output)
    by_url = run_json("similar", f"https://www.youtube.com/shorts/{dash}", "-k", "3")
    assert by_id["results"] == by_url["results"]
    code, output = run("similar", "-k", "3", "--", dash)
    assert code == 0 and "score" in output


def test_unknown_video_is_embedded_on_the_fly_and_not_stored(youtube_env: FakeYouTube) -> None:
    fake = youtube_env
    run_json("ingest", "cats")
    before = run_json("stats")
    outsider = fake.searches["animals"][-1]  # a chelsea re-upload the corpus does not hold
    calls = (fake.search_calls, fake.videos_calls)
    result = run_json("similar", outsider, "-k", "3")
    assert set(fake.searches["cats"]) & {r["video_id"] for r in result["results"]}
    assert (fake.search_calls, fake.videos_calls) == calls  # no API call
    assert fake.thumbnail_requests[outsider] == 1
    assert run_json("stats")["videos"] == before["videos"]


def test_unknown_video_without_thumbnail_is_one_clear_error(youtube_env: FakeYouTube) -> None:
    run_json("ingest", "cats")
    code, output = run("similar", "ZZZZZZZZZZZ")
    assert code == 1
    assert output.count("\n") == 1 and "no thumbnail" in output


def test_similar_by_image_file_and_url(youtube_env: FakeYouTube, tmp_path: Path) -> None:
    import requests

    run_json("ingest", "cats", "travel")
    target = youtube_env.searches["travel"][0]
    url = youtube_env.thumbnail_url(target, "hqdefault")  # letterboxed 4:3
    by_url = run_json("similar", "--image", url, "-k", "1")
    assert by_url["query"] == {"image": url}
    assert by_url["results"][0]["video_id"] in youtube_env.searches["travel"][:3]
    path = tmp_path / "thumb.jpg"
    path.write_bytes(requests.get(url, timeout=10).content)
    by_file = run_json("similar", "--image", str(path), "-k", "1")
    assert by_file["results"] == by_url["results"]
    code, output = run("similar", "--image", "http://example.com/x.jpg")
    assert code == 1 and "THUMBSEARCH_ALLOWED_HOSTS" in output
    code, output = run("similar", "--image", "file:///etc/passwd")
    assert code == 1 and "http(s)" in output
    bad = tmp_path / "bad.jpg"
    bad.write_text("<html>nope</html>")
    code, output = run("similar", "--image", str(bad))
    assert code == 1 and "an HTML page" in output


def test_bad_key_and_unreachable_api_fail_clearly(youtube_env: FakeYouTube,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOUTUBE_API_KEY", "wrong-key")
    code, output = run("ingest", "cats")
    assert code == 1 and "API_KEY_INVALID" in output
    monkeypatch.setenv("YOUTUBE_API_KEY", youtube_env.api_key)
    monkeypatch.setenv("THUMBSEARCH_YOUTUBE_ENDPOINT", "http://127.0.0.1:9/")
    code, output = run("ingest", "cats")
    assert code == 1 and "cannot reach" in output


def test_transient_errors_are_retried(youtube_env: FakeYouTube) -> None:
    youtube_env.inject("/youtube/v3/search", 503, times=1)
    youtube_env.inject("/vi/", 500, times=2)
    summary = run_json("ingest", "cats")
    assert summary["new"] == len(youtube_env.searches["cats"]) and summary["failed"] == []


def test_quota_stops_with_exit_3_and_keeps_what_it_got(
        youtube_env: FakeYouTube) -> None:
    youtube_env.search_quota = 2
    code, output = run("ingest", "reuploads", "--pages", "4", "--per-page", "10", "--json")
    assert code == 3
    lines = output.strip().splitlines()
    assert "quota" in lines[-1] and "resets at midnight Pacific" in lines[-1]
    summary = json.loads("\n".join(lines[:-1]))
    assert summary["new"] == 20 and summary["pages"] == 2
    assert summary["api_calls"]["search"] == 3  # the refused call is charged too
    assert run_json("stats")["vectors"] == 20


def test_stored_lookup_does_not_import_tensorflow(youtube_env: FakeYouTube,
                                                  isolated_env: Path) -> None:
    run_json("ingest", "cats")
    video = youtube_env.searches["cats"][0]
    code = (
        "import sys, json\n"
        "from search.cli import main\n"
        f"sys.argv = ['thumbsearch', 'similar', {video!r}, '--json']\n"
        "try:\n    main()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["results"]) == 2


def test_console_script_end_to_end(youtube_env: FakeYouTube) -> None:
    exe = Path(sys.executable).with_name("thumbsearch")
    done = subprocess.run([str(exe), "ingest", "cats"], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "new videos 3" in done.stdout
    missing = subprocess.run([str(exe), "similar", "bad id!"], capture_output=True, text=True,
                             timeout=120, check=False)
    assert missing.returncode == 1
    assert missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr


def test_ingest_on_match_hands_the_runs_matches_to_the_command(youtube_env: FakeYouTube,
                                                               tmp_path: Path) -> None:
    # The first re-upload of the astronaut photo, watched by its thumbnail before it is stored.
    watched = youtube_env.searches["reuploads"][0]
    code, output = run("watch", "add", watched)
    assert code == 0 and "0 stored videos already match" in output, output
    got = tmp_path / "matches.json"
    # The command fails after reading its input: one warning line, and the run is whole.
    result = runner.invoke(app, ["ingest", "reuploads", "--pages", "3", "--per-page", "20",
                                 "--json", "--on-match", f'cat > "{got}"; exit 1'])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["new"] == 60 and summary["watch_matches"] >= 1
    assert result.stderr.count("warning: the --on-match command") == 1, result.stderr
    assert "exited with status 1; ingestion goes on" in result.stderr
    data = json.loads(got.read_text())
    assert data["run_id"] == summary["run_id"] and data["count"] == summary["watch_matches"]
    # Each is another upload of the same photo, recorded once under this run.
    assert all(m["watch"] == watched and m["run_id"] == summary["run_id"]
               and m["video_id"] != watched and m["score"] >= 0.75
               and "astronaut portrait" in m["title"].lower() for m in data["matches"])
    assert len({m["video_id"] for m in data["matches"]}) == data["count"]
    # A run that finds nothing new runs no command.
    got.unlink()
    again = runner.invoke(app, ["ingest", "reuploads", "--per-page", "20",
                                "--on-match", f'cat > "{got}"'])
    assert again.exit_code == 0 and not got.exists(), again.output
    assert ", 0 watch matches" in again.stdout
