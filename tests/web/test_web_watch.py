"""The watchlist's API: add (id, URL, upload, a video fetched), list, matches, remove, errors,
and writes refused from another site's page (tiny model, SQLite, a fake thumbnail host)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from indexer.ingest.local import add_paths
from indexer.service import Service, build_service
from indexer.settings import Settings
from search.eval.samples import SampleVideo, write_ytdlp_folder
from search.neighbours import SimilarResult, similar_to_bytes, similar_to_video
from search.strength import strength
from search.watch import list_watchlist, remove_from_watchlist
from search.web import create_app
from tests.fakes.embedder import TinyEmbedder
from tests.fakes.youtube import FakeVideo, FakeYouTube

THRESHOLD = 0.9
UNSTORED = "zzUnstored1"  # a video the fake thumbnail host has and the corpus does not


@dataclass
class Site:
    """The corpus, its service, and the fake host of one unstored video's thumbnail."""

    service: Service
    samples: list[SampleVideo]

    def above(self, result: SimilarResult) -> set[str]:
        """The stored videos a search found at or above THRESHOLD: what a watch matches."""
        return {r.video_id for r in result.results if r.score >= THRESHOLD - 1e-6}

    def matching(self, video_id: str) -> set[str]:
        found = self.above(similar_to_video(self.service, video_id, 20))
        assert found  # the test's sample has stored videos to find
        return found


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("watch")
    samples = write_ytdlp_folder(root / "thumbs", variants_per_photo=2)
    frame = Image.open(samples[0].path).convert("RGB")
    with FakeYouTube([FakeVideo(UNSTORED, "not stored", frame=frame)]) as fake:
        settings = Settings.from_env({
            "THUMBSEARCH_HOME": str(root / "home"),
            "THUMBSEARCH_THUMBNAIL_BASE": fake.thumbnail_base,
            "THUMBSEARCH_ALLOWED_HOSTS": fake.thumbnail_host,
            "THUMBSEARCH_MAX_IMAGE_BYTES": str(512 * 1024)})
        with build_service(settings, embedder=TinyEmbedder()) as service:
            service.prepare_for_writing()
            add_paths(service, [root / "thumbs"])
            yield Site(service, samples)


@pytest.fixture
def client(site: Site) -> Iterator[TestClient]:
    """A client of the app; whatever a test watched is removed after it."""
    yield TestClient(create_app(lambda: site.service), raise_server_exceptions=False)
    names = [item.name for item in list_watchlist(site.service)]
    if names:
        remove_from_watchlist(site.service, names)


def _original(site: Site, index: int = 0) -> SampleVideo:
    """The index-th original photo (0 astronaut, 7 motorcycle, 9 flower: with re-uploads the
    tiny model scores above THRESHOLD)."""
    return [s for s in site.samples if s.variant == "original"][index]


def _jpeg(path: Path) -> bytes:
    buffer = io.BytesIO()
    Image.open(path).convert("RGB").save(buffer, "JPEG")
    return buffer.getvalue()


def _error(answer: Any, status: int) -> str:
    """The answer is exactly ``{"error": "<one line>"}`` with ``status``."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert list(body) == ["error"] and "\n" not in body["error"], body
    assert "Traceback" not in body["error"]
    return str(body["error"])


def test_add_by_id_finds_the_stored_reuploads(client: TestClient, site: Site) -> None:
    original = _original(site)
    added = client.post("/api/watch", json={"video": original.video_id,
                                            "threshold": THRESHOLD})
    assert added.status_code == 201, added.text
    item = added.json()
    assert (item["name"], item["kind"], item["video_id"]) == (
        original.video_id, "video", original.video_id)
    assert item["threshold"] == THRESHOLD
    found = {m["video_id"] for m in item["latest_matches"]}
    assert found == site.matching(original.video_id)  # everything above, never itself
    assert item["matches_total"] == len(found) and item["latest_match_at"]
    assert all(m["strength"] == strength(m["score"]) and m["score"] >= THRESHOLD
               and m["thumbnail"] == f"/thumbs/{m['video_id']}" for m in item["latest_matches"])
    assert client.get(item["thumbnail"]).status_code == 200

    listed = client.get("/api/watch").json()
    assert listed["default_threshold"] > 0
    (shown,) = listed["items"]
    assert shown["name"] == original.video_id and shown["matches_total"] == len(found)
    assert {m["video_id"] for m in shown["latest_matches"]} == found
    assert client.get("/api/watch", params={"matches": 1}).json()["items"][0][
        "latest_matches"].__len__() == 1
    assert _error(client.post("/api/watch", json={"video": original.video_id}),
                  400).startswith("a watched item is already named")


def test_add_by_url_and_by_form_with_a_name(client: TestClient, site: Site) -> None:
    first, second = _original(site, 0), _original(site, 9)
    by_url = client.post("/api/watch", json={
        "video": f"https://www.youtube.com/watch?v={first.video_id}", "name": "mine"})
    assert by_url.status_code == 201, by_url.text
    assert by_url.json()["name"] == "mine" and by_url.json()["video_id"] == first.video_id
    # A form, as curl -d sends it: the default threshold.
    by_form = client.post("/api/watch", data={"video": f"https://youtu.be/{second.video_id}"})
    assert by_form.status_code == 201, by_form.text
    assert by_form.json()["threshold"] == client.get("/api/watch").json()["default_threshold"]
    assert [i["name"] for i in client.get("/api/watch").json()["items"]] == [
        "mine", second.video_id]


def test_add_an_upload_and_see_its_thumbnail(client: TestClient, site: Site) -> None:
    original = _original(site, 7)
    photo = _jpeg(original.path)
    added = client.post("/api/watch", files={"image": ("folder/my thumb.jpg", photo)},
                        data={"threshold": str(THRESHOLD)})
    assert added.status_code == 201, added.text
    item = added.json()
    assert (item["name"], item["kind"], item["video_id"]) == ("my thumb.jpg", "image", None)
    found = {m["video_id"] for m in item["latest_matches"]}
    assert original.video_id in found
    assert found == site.above(similar_to_bytes(site.service, photo, "q", 20))
    thumb = client.get(item["thumbnail"])
    assert item["thumbnail"].startswith("/thumbs/watched/")
    assert thumb.status_code == 200 and thumb.content == photo
    assert thumb.headers["content-type"] == "image/jpeg"
    _error(client.get("/thumbs/watched/" + "0" * 64), 404)  # not a watched item's
    _error(client.get("/thumbs/watched/nothex"), 422)


def test_a_video_not_in_the_corpus_is_watched_by_its_fetched_thumbnail(
        client: TestClient, site: Site) -> None:
    added = client.post("/api/watch", json={"video": UNSTORED, "threshold": THRESHOLD})
    assert added.status_code == 201, added.text
    item = added.json()
    assert item["video_id"] == UNSTORED and item["thumbnail"].startswith("/thumbs/watched/")
    assert client.get(item["thumbnail"]).status_code == 200
    # Its thumbnail is the first sample's photo: that photo's videos match.
    found = {m["video_id"] for m in item["latest_matches"]}
    assert found == site.matching(UNSTORED)
    assert found & {s.video_id for s in site.samples if s.photo == site.samples[0].photo}
    _error(client.post("/api/watch", json={"video": "zzNoThumb01"}), 404)


def test_matches_since_name_and_limit(client: TestClient, site: Site) -> None:
    first, second = _original(site, 0), _original(site, 9)
    for video in (first, second):
        assert client.post("/api/watch", json={"video": video.video_id,
                                               "threshold": THRESHOLD}).status_code == 201
    every = client.get("/api/watch/matches").json()["matches"]
    assert {(m["watch"], m["video_id"]) for m in every} == {
        (v.video_id, m) for v in (first, second) for m in site.matching(v.video_id)}
    times = [m["found_at"] for m in every]
    assert times == sorted(times, reverse=True)  # newest first
    assert all(m["strength"] == strength(m["score"]) for m in every)
    mine = client.get("/api/watch/matches", params={"name": first.video_id}).json()
    assert {m["video_id"] for m in mine["matches"]} == site.matching(first.video_id)
    assert {m["watch"] for m in mine["matches"]} == {first.video_id}
    assert len(client.get("/api/watch/matches", params={"since": "1d"}).json()["matches"]) == (
        len(every))
    future = client.get("/api/watch/matches", params={"since": "2999-01-01"}).json()
    assert future["matches"] == [] and future["since"].startswith("2999-01-01")
    assert len(client.get("/api/watch/matches", params={"limit": 1}).json()["matches"]) == 1


def test_remove(client: TestClient, site: Site) -> None:
    original = _original(site)
    client.post("/api/watch", json={"video": original.video_id, "threshold": THRESHOLD,
                                    "name": "a/b c"})
    gone = client.delete("/api/watch/" + "a%2Fb%20c")
    assert gone.status_code == 200, gone.text
    assert gone.json() == {"removed": "a/b c",
                           "matches_removed": len(site.matching(original.video_id))}
    assert client.get("/api/watch").json()["items"] == []
    assert client.get("/api/watch/matches").json()["matches"] == []
    _error(client.delete("/api/watch/a%2Fb%20c"), 404)


@pytest.mark.parametrize(("method", "url", "kwargs", "status"), [
    ("delete", "/api/watch/nothing-here", {}, 404),
    ("get", "/api/watch/matches?name=nothing-here", {}, 404),
    ("get", "/api/watch/matches?since=yesterday", {}, 422),
    ("get", "/api/watch/matches?limit=0", {}, 422),
    ("get", "/api/watch/matches?limit=1000000", {}, 422),
    ("get", "/api/watch?matches=51", {}, 422),
    ("post", "/api/watch", {"json": {"video": "not an id!"}}, 400),
    ("post", "/api/watch", {"data": {"video": "https://example.com/watch?v=x"}}, 400),
    ("post", "/api/watch", {"json": {"video": "dQw4w9WgXcQ", "threshold": 2}}, 422),
    ("post", "/api/watch", {"json": {"video": "dQw4w9WgXcQ", "threshold": 0}}, 422),
    ("post", "/api/watch", {"json": {"video": "dQw4w9WgXcQ", "threshold": "0.9"}}, 422),
    ("post", "/api/watch", {"data": {"video": "dQw4w9WgXcQ", "threshold": "nan"}}, 422),
    ("post", "/api/watch", {"data": {"video": "dQw4w9WgXcQ", "threshold": "lots"}}, 422),
    ("post", "/api/watch", {"json": {"video": "dQw4w9WgXcQ", "name": "x" * 201}}, 422),
    ("post", "/api/watch", {"json": {"video": "dQw4w9WgXcQ", "name": "\x07"}}, 422),
    ("post", "/api/watch", {"json": {"video": "dQw4w9WgXcQ", "colour": "red"}}, 422),
    ("post", "/api/watch", {"json": {}}, 422),
    ("post", "/api/watch", {"json": ["dQw4w9WgXcQ"]}, 422),
    ("post", "/api/watch", {"content": b"{nope", "headers": {
        "content-type": "application/json"}}, 400),
    ("post", "/api/watch", {"content": b"video=x", "headers": {
        "content-type": "text/plain"}}, 422),
    ("post", "/api/watch", {"files": {"image": ("x.jpg", b"not an image")}}, 400),
    ("post", "/api/watch", {"files": {"image": ("x.jpg", b"\xff\xd8")},
                            "data": {"video": "dQw4w9WgXcQ"}}, 422),
])
def test_every_error_is_one_json_line(client: TestClient, method: str, url: str,
                                      kwargs: dict[str, Any], status: int) -> None:
    _error(client.request(method.upper(), url, **kwargs), status)
    assert client.get("/api/watch").json()["items"] == []  # nothing was added


def test_a_too_large_upload_is_413(client: TestClient, site: Site) -> None:
    big = b"\xff" * (site.service.settings.max_image_bytes + 1)
    _error(client.post("/api/watch", files={"image": ("x.jpg", big)}), 413)
    huge = b"\xff" * (site.service.settings.max_image_bytes + 128 * 1024)
    _error(client.post("/api/watch", files={"image": ("x.jpg", huge)}), 413)  # the body limit
    assert client.get("/api/watch").json()["items"] == []


@pytest.mark.parametrize("headers", [
    {"origin": "https://evil.example"},
    {"origin": "http://testserver.evil.example"},
    {"origin": "null"},  # a file:// or sandboxed page
    {"origin": "http://localhost:9999"},
    {"sec-fetch-site": "cross-site"},
    {"sec-fetch-site": "same-site"},
])
def test_writes_from_another_site_are_refused(client: TestClient, site: Site,
                                              headers: dict[str, str]) -> None:
    original = _original(site)
    # What a plain HTML form on another site sends: a urlencoded or multipart POST.
    _error(client.post("/api/watch", data={"video": original.video_id}, headers=headers), 403)
    _error(client.post("/api/watch", files={"image": ("x.jpg", _jpeg(original.path))},
                       headers=headers), 403)
    assert client.get("/api/watch").json()["items"] == []
    assert client.post("/api/watch", json={"video": original.video_id}).status_code == 201
    _error(client.delete(f"/api/watch/{original.video_id}", headers=headers), 403)
    assert len(client.get("/api/watch").json()["items"]) == 1  # still watched
    # Reads are answered whoever asks (a page elsewhere cannot read them: no CORS).
    assert client.get("/api/watch", headers=headers).status_code == 200


def test_the_page_itself_may_write(client: TestClient, site: Site) -> None:
    original = _original(site)
    same = {"origin": "http://testserver", "sec-fetch-site": "same-origin"}
    assert client.post("/api/watch", json={"video": original.video_id},
                       headers=same).status_code == 201
    assert client.delete(f"/api/watch/{original.video_id}", headers=same).status_code == 200


def test_the_schema_lists_the_watch_operations(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {"get", "post"} <= set(paths["/api/watch"])
    assert "delete" in paths["/api/watch/{name}"] and "get" in paths["/api/watch/matches"]
    body = paths["/api/watch"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-www-form-urlencoded",
            "multipart/form-data"} == set(body)
    assert {"403", "413", "422"} <= set(paths["/api/watch"]["post"]["responses"])


@pytest.mark.parametrize(("method", "url", "allow"), [
    ("OPTIONS", "/api/watch", "GET, POST"),
    ("PUT", "/api/watch/some-name", "DELETE"),
    ("PUT", "/api/watch/matches", "GET"),
])
def test_a_method_not_taken_names_every_method_of_the_path(
        client: TestClient, method: str, url: str, allow: str) -> None:
    answer = client.request(method, url)
    _error(answer, 405)
    assert answer.headers["allow"] == allow
