"""The JSON API with FastAPI's test client, the gallery files and duplicate groups (tiny model)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from indexer.ingest.local import add_paths
from indexer.service import Service, build_service
from indexer.settings import Settings
from search.duplicates import duplicate_components, find_duplicates
from search.eval.samples import SampleVideo, write_ytdlp_folder
from search.gallery import write_html, write_sheet
from search.neighbours import similar_to_video
from search.strength import LIKELY_REUPLOAD, strength
from search.web import create_app
from tests.fakes.embedder import TinyEmbedder


def _ingest_samples(settings: Settings, folder: Path) -> tuple[Service, list[SampleVideo]]:
    """Sample photos and re-uploads written to ``folder``, ingested with the tiny embedder."""
    samples = write_ytdlp_folder(folder, variants_per_photo=2)
    service = build_service(settings, embedder=TinyEmbedder())
    service.prepare_for_writing()
    add_paths(service, [folder])
    return service, samples


@pytest.fixture(scope="module")
def sqlite_corpus(tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[tuple[Service, list[SampleVideo]]]:
    """The sample corpus in a SQLite home of its own, built once for the module's tests."""
    root = tmp_path_factory.mktemp("corpus")
    service, samples = _ingest_samples(
        Settings.from_env({"THUMBSEARCH_HOME": str(root / "home")}), root / "thumbs")
    yield service, samples
    service.close()


@pytest.fixture
def own_corpus(settings: Settings, tmp_path: Path
               ) -> Iterator[tuple[Service, list[SampleVideo]]]:
    """The sample corpus in this test's home and database, for a test that changes it or
    reaches it through the environment."""
    service, samples = _ingest_samples(settings, tmp_path / "thumbs")
    yield service, samples
    service.close()


@pytest.fixture
def corpus(request: pytest.FixtureRequest) -> tuple[Service, list[SampleVideo]]:
    """The sample corpus, for tests that only read it: on SQLite the module's shared one, on
    PostgreSQL (a database per test) the test's own."""
    backend = request.getfixturevalue("backend") if "backend" in request.fixturenames else (
        "sqlite")
    name = "own_corpus" if backend == "postgres" else "sqlite_corpus"
    built: tuple[Service, list[SampleVideo]] = request.getfixturevalue(name)
    return built


@pytest.fixture
def client(corpus: tuple[Service, list[SampleVideo]]) -> TestClient:
    service, _ = corpus
    return TestClient(create_app(lambda: service), raise_server_exceptions=False)


def _jpeg(path: Path) -> bytes:
    buffer = io.BytesIO()
    Image.open(path).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.mark.usefixtures("backend")
def test_similar_by_id_and_url(client: TestClient,
                               corpus: tuple[Service, list[SampleVideo]]) -> None:
    _, samples = corpus
    original = samples[0]
    by_id = client.get(f"/api/similar/{original.video_id}", params={"k": 3})
    assert by_id.status_code == 200
    data = by_id.json()
    assert len(data["results"]) == 3
    assert data["query"]["title"] == original.title
    first = data["results"][0]
    assert first["video_id"] != original.video_id
    assert all(r["strength"] == strength(r["score"]) for r in data["results"])
    assert first["youtube_url"] == f"https://www.youtube.com/watch?v={first['video_id']}"
    url = f"https://www.youtube.com/watch?v={original.video_id}"
    by_url = client.get("/api/similar/" + url.replace("?", "%3F"), params={"k": 3})
    assert by_url.status_code == 200
    assert by_url.json()["results"] == data["results"]
    image = client.get(first["thumbnail"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"


def test_similar_takes_a_search_option(client: TestClient,
                                      corpus: tuple[Service, list[SampleVideo]]) -> None:
    _, samples = corpus
    query = samples[0].video_id
    plain = client.get(f"/api/similar/{query}", params={"k": 30}).json()["results"]
    cosine = {r["video_id"]: r["score"] for r in plain}
    for spec in ("aqe", "kr:k=10,k1=3"):
        answer = client.get(f"/api/similar/{query}", params={"k": 5, "rerank": spec})
        assert answer.status_code == 200, answer.text
        results = answer.json()["results"]
        assert len(results) == 5 and query not in {r["video_id"] for r in results}
        assert all(r["score"] == cosine[r["video_id"]] for r in results)  # cosines, unchanged
    sample = samples[3]
    upload = client.post("/api/similar", files={"image": ("q.jpg", _jpeg(sample.path))},
                         data={"k": "2", "rerank": "kr"})
    assert upload.status_code == 200, upload.text
    assert client.post("/api/similar", files={"image": ("q.jpg", _jpeg(sample.path))},
                       data={"rerank": "nope"}).status_code == 422


@pytest.mark.usefixtures("backend")
def test_upload_finds_its_own_photo(client: TestClient,
                                    corpus: tuple[Service, list[SampleVideo]]) -> None:
    _, samples = corpus
    sample = samples[3]
    answer = client.post("/api/similar", files={"image": ("q.jpg", _jpeg(sample.path))},
                         data={"k": "2"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"][0]["video_id"] == sample.video_id


@pytest.mark.parametrize(("method", "url", "status"), [
    ("get", "/api/similar/not-an-id", 400),
    ("get", "/api/similar/local:0123456789abcdef", 404),
    ("get", "/api/similar/dQw4w9WgXcQ?k=0", 422),
    ("get", "/api/similar/dQw4w9WgXcQ?k=many", 422),
    ("get", "/api/similar/dQw4w9WgXcQ?rerank=bogus", 422),
    ("get", "/thumbs/nope", 404),
    ("get", "/api/videos?page=0", 422),
])
@pytest.mark.usefixtures("backend")
def test_errors_are_json_with_status(client: TestClient, method: str, url: str,
                                     status: int) -> None:
    answer = getattr(client, method)(url)
    assert answer.status_code == status
    assert "error" in answer.json() and "Traceback" not in answer.text


def test_bad_and_too_large_uploads(client: TestClient,
                                   corpus: tuple[Service, list[SampleVideo]]) -> None:
    service, _ = corpus
    bad = client.post("/api/similar", files={"image": ("x.jpg", b"not an image")})
    assert bad.status_code == 400 and "error" in bad.json()
    big = b"\xff" * (service.settings.max_image_bytes + 1)
    assert client.post("/api/similar", files={"image": ("x.jpg", big)}).status_code == 413
    assert client.post("/api/similar").status_code == 422


@pytest.mark.usefixtures("backend")
def test_videos_stats_duplicates_page_and_schema(client: TestClient) -> None:
    videos = client.get("/api/videos", params={"per_page": 5, "page": 2}).json()
    assert videos["total"] == 30 and videos["pages"] == 6 and len(videos["videos"]) == 5
    past = client.get("/api/videos", params={"per_page": 5, "page": 9}).json()
    last = client.get("/api/videos", params={"per_page": 5, "page": 6}).json()
    assert past["page"] == 6 and past["videos"] == last["videos"] and len(past["videos"]) == 5
    assert client.get("/api/videos", params={"query": "nothing"}).json()["total"] == 0
    assert client.get("/api/stats").json()["vectors"] == 30
    groups = client.get("/api/duplicates", params={"threshold": 0.9}).json()["groups"]
    assert groups and all(g["size"] >= 2 for g in groups)
    assert all(v["strength"] == strength(v["best_score"]) for g in groups for v in g["videos"])
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # nothing from a CDN
    # The duplicates form starts at the library's default threshold.
    assert f'id="threshold" type="number" min="0" max="1" step="0.01" ' \
           f'value="{LIKELY_REUPLOAD}"' in page.text
    script = client.get("/static/app.js")
    assert script.status_code == 200 and f'|| "{LIKELY_REUPLOAD}"' in script.text
    assert client.get("/static/../app.py").status_code == 404
    schema = client.get("/openapi.json").json()
    assert {"/api/similar", "/api/videos", "/api/stats"} <= set(schema["paths"])


@pytest.mark.usefixtures("backend")
def test_duplicate_groups_are_the_reuploads(corpus: tuple[Service, list[SampleVideo]]) -> None:
    service, samples = corpus
    groups = find_duplicates(service, 0.97)
    photo_of = {s.video_id: s.photo for s in samples}
    assert groups
    for group in groups:
        assert len({photo_of[v.video_id] for v in group.videos}) == 1
        times = [v.published_at for v in group.videos]
        assert times == sorted(times)  # type: ignore[type-var]
    sizes = [len(g.videos) for g in groups]
    assert sizes == sorted(sizes, reverse=True)
    across = find_duplicates(service, 0.97, across_channels=True)
    assert all(len(g.channels) >= 2 for g in across)


def test_components_match_brute_force() -> None:
    rng = np.random.default_rng(1)
    centres = rng.standard_normal((40, 16)).astype(np.float32)
    vectors = centres[rng.integers(0, 40, 300)] + 0.1 * rng.standard_normal((300, 16))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    threshold = 0.95
    adjacency = (vectors @ vectors.T) >= threshold
    # Brute-force components by repeated expansion.
    seen: set[int] = set()
    expected = []
    for start in range(300):
        if start in seen:
            continue
        todo, part = [start], {start}
        while todo:
            node = todo.pop()
            for other in np.flatnonzero(adjacency[node]).tolist():
                if other not in part:
                    part.add(other)
                    todo.append(other)
        seen |= part
        if len(part) > 1:
            expected.append(sorted(part))
    for exact in (True, False):
        got = duplicate_components(vectors.astype(np.float32), threshold, exact=exact,
                                   batch=37)
        assert sorted(sorted(g) for g, _ in got) == sorted(expected)


@pytest.mark.usefixtures("backend")
def test_gallery_html_and_sheet(corpus: tuple[Service, list[SampleVideo]],
                                tmp_path: Path) -> None:
    service, samples = corpus
    result = similar_to_video(service, samples[0].video_id, 4)
    page = write_html(service, result, tmp_path / "out" / "g.html").read_text()
    assert page.count("data:image/jpeg;base64,") == 5
    assert "https://www.youtube.com/watch?v=" + result.results[0].video_id in page
    assert result.results[0].channel_title in page
    sheet = Image.open(write_sheet(service, result, tmp_path / "g.png"))
    pixels = np.asarray(sheet.convert("L"))
    assert sheet.width > 5 * 240 and pixels.std() > 20


def test_serving_and_a_stored_lookup_do_not_import_tensorflow(
        own_corpus: tuple[Service, list[SampleVideo]]) -> None:
    import subprocess
    import sys

    _, samples = own_corpus
    code = (
        "import sys\n"
        "from fastapi.testclient import TestClient\n"
        "from indexer.service import build_service\n"
        "from indexer.settings import Settings\n"
        "from search.cli import serve\n"
        "from search.web import create_app\n"
        "from tests.fakes.embedder import TinyEmbedder\n"
        "app = create_app(lambda: build_service(Settings.from_env(), embedder=TinyEmbedder()))\n"
        f"answer = TestClient(app).get('/api/similar/{samples[0].video_id}')\n"
        "assert answer.status_code == 200, answer.text\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n")
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.usefixtures("backend")
def test_duplicates_gallery_has_headings_dates_and_strengths(
        corpus: tuple[Service, list[SampleVideo]]) -> None:
    import re

    from search.cli.duplicates import render_groups_html
    from search.gallery import cached_thumbnail, data_uri_of, human_date

    service, _ = corpus
    groups = find_duplicates(service, 0.9)
    videos = service.store.get_videos([v.video_id for g in groups for v in g.videos])
    images = {vid: data_uri_of(cached_thumbnail(service, video), vid)
              for vid, video in videos.items()}
    page = render_groups_html(groups, 0.9, images)
    assert "no image" not in page  # no empty slot before each group
    assert page.count('class="heading"') == len(groups)
    assert page.count("data:image/jpeg;base64,") == sum(len(g.videos) for g in groups)
    first = groups[0]
    assert f"first published {human_date(first.first_published)}" in page
    assert not re.search(r"\d{4}-\d\d-\d\dT\d\d:", page)  # no ISO timestamps
    for video in first.videos:
        assert (f'<span class="score {strength(video.best_score)}">'
                f"{video.best_score:.3f}</span>") in page
