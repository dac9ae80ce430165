"""The documented Python API (search.Thumbsearch) over a real corpus: SQLite, FAISS, photos."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.errors import EmptyCorpusError, ThumbsearchError, VideoIdError
from indexer.ingest.local import add_paths
from indexer.service import build_service
from indexer.settings import Settings
from search import Thumbsearch
from search.eval.samples import SampleVideo, write_ytdlp_folder
from search.neighbours import similar_to_video
from tests.fakes.embedder import TinyEmbedder


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[SampleVideo]]:
    """A home holding the sample photos and their re-uploads, embedded by the tiny model."""
    root = tmp_path_factory.mktemp("client")
    samples = write_ytdlp_folder(root / "thumbs", variants_per_photo=2)
    settings = Settings.from_env({"THUMBSEARCH_HOME": str(root / "home")})
    with build_service(settings, embedder=TinyEmbedder()) as service:
        service.prepare_for_writing()
        add_paths(service, [root / "thumbs"])
    return root / "home", samples


def _original(samples: list[SampleVideo]) -> SampleVideo:
    return next(s for s in samples if s.variant == "original")


def test_similar_by_id_and_by_url(home: tuple[Path, list[SampleVideo]]) -> None:
    path, samples = home
    photo_of = {s.video_id: s.photo for s in samples}
    originals = [s for s in samples if s.variant == "original"]
    with Thumbsearch(home=path, embedder=TinyEmbedder()) as corpus:
        answers = [corpus.similar(s.video_id, k=3) for s in originals]
        by_url = corpus.similar(f"https://youtu.be/{originals[0].video_id}", k=3)
    assert by_url.results == answers[0].results
    for query, result in zip(originals, answers, strict=True):
        ids = [hit.video_id for hit in result.results]
        assert query.video_id not in ids
        assert [hit.rank for hit in result.results] == [1, 2, 3]
        assert result.model == "tiny-test"
    # the tiny 8x8 model still finds a re-upload of the same photo first for most photos
    firsts = sum(photo_of[r.results[0].video_id] == q.photo
                 for q, r in zip(originals, answers, strict=True))
    assert firsts >= len(originals) // 2


def test_answers_equal_the_library_functions(home: tuple[Path, list[SampleVideo]]) -> None:
    path, samples = home
    settings = Settings.from_env({"THUMBSEARCH_HOME": str(path)})
    with build_service(settings, embedder=TinyEmbedder()) as service:
        expected = [similar_to_video(service, s.video_id, 5) for s in samples[:6]]
    with Thumbsearch(home=path, embedder=TinyEmbedder()) as corpus:
        batch = corpus.similar_many([s.video_id for s in samples[:6]] + ["zzzzzzzzzzz"], k=5)
    assert batch[:6] == expected
    assert batch[6] is None


def test_similar_image_by_path_and_bytes(home: tuple[Path, list[SampleVideo]]) -> None:
    path, samples = home
    query = _original(samples)
    image = next((path.parent / "thumbs").glob(f"*{query.video_id}*.jpg"))
    with Thumbsearch(home=path, embedder=TinyEmbedder()) as corpus:
        by_path = corpus.similar_image(image, k=3)
        by_bytes = corpus.similar_image(image.read_bytes(), k=3)
    assert by_path.results[0].video_id == query.video_id
    assert by_path.results[0].score > 0.99
    assert [h.video_id for h in by_bytes.results] == [h.video_id for h in by_path.results]


def test_stats_and_duplicates(home: tuple[Path, list[SampleVideo]]) -> None:
    path, samples = home
    with Thumbsearch(home=path, embedder=TinyEmbedder()) as corpus:
        figures = corpus.stats()
        groups = corpus.duplicates(threshold=0.99)
    assert figures["videos"] == len(samples)
    assert figures["vectors"] == len(samples)
    json.dumps(figures)  # machine values only
    photo_of = {s.video_id: s.photo for s in samples}
    for group in groups:
        assert len({photo_of[v.video_id] for v in group.videos}) == 1
        assert all(v.best_score >= 0.99 for v in group.videos)


def test_errors_are_the_exception_tree(home: tuple[Path, list[SampleVideo]],
                                       tmp_path: Path) -> None:
    path, _ = home
    with Thumbsearch(home=path, embedder=TinyEmbedder()) as corpus, \
            pytest.raises(VideoIdError):
        corpus.similar("not an id at all")
    with Thumbsearch(home=tmp_path / "empty", embedder=TinyEmbedder()) as corpus, \
            pytest.raises(EmptyCorpusError) as raised:
        corpus.similar("dQw4w9WgXcQ")
    assert isinstance(raised.value, ThumbsearchError)
    assert "\n" not in str(raised.value)


def test_a_stored_lookup_loads_no_model_and_no_http_client(
        home: tuple[Path, list[SampleVideo]]) -> None:
    path, samples = home
    script = (
        "import sys, json\n"
        "from search import Thumbsearch\n"
        "from tests.fakes.embedder import TinyEmbedder\n"
        f"with Thumbsearch(home={str(path)!r}, embedder=TinyEmbedder()) as corpus:\n"
        f"    hits = corpus.similar({samples[0].video_id!r}, k=2).results\n"
        "print(json.dumps({'hits': len(hits), 'heavy': sorted(m for m in "
        "('tensorflow', 'keras', 'ai_edge_litert', 'requests', 'sqlalchemy') "
        "if m in sys.modules)}))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    answer = json.loads(out.stdout)
    assert answer == {"hits": 2, "heavy": []}


def _python_blocks(page: Path) -> list[str]:
    text = page.read_text("utf-8")
    return [block.split("```", 1)[0] for block in text.split("```python\n")[1:]]


def test_the_docs_examples_run(tmp_path: Path) -> None:
    """docs/python-api.md's examples, run as written against a demo corpus in the current
    directory (the demo's photos, embedded by a stand-in of the default model)."""
    from indexer.models import model_spec
    from tests.fakes.embedder import StandInEmbedder

    root = Path(__file__).resolve().parents[2]
    samples = write_ytdlp_folder(tmp_path / "demo-data" / "thumbnails", variants_per_photo=2)
    spec = model_spec(Settings.from_env({}).model)
    settings = Settings.from_env({"THUMBSEARCH_HOME": str(tmp_path / "demo-data")})
    with build_service(settings, embedder=StandInEmbedder(spec.model_id, spec.dim,
                                                          spec.input_size)) as service:
        service.prepare_for_writing()
        add_paths(service, [tmp_path / "demo-data" / "thumbnails"])
    first, errors = _python_blocks(root / "docs" / "python-api.md")
    env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin",
           "THUMBSEARCH_HOME": str(tmp_path / "demo-data")}
    ran = subprocess.run([sys.executable, "-c", first], capture_output=True, text=True,
                         cwd=tmp_path, env=env, check=True)
    lines = ran.stdout.splitlines()
    assert lines[-1] == f"{len(samples)} videos"
    assert [line.split()[0] for line in lines[:-1]] == ["1", "2", "3", "4"]
    assert "rAuzzsARkjE" not in ran.stdout  # the query is not its own neighbour
    assert all(float(line.split()[1]) <= 1.0 for line in lines[:-1])
    ran = subprocess.run([sys.executable, "-c", errors], capture_output=True, text=True,
                         cwd=tmp_path, env=env, check=True)
    assert ran.stdout.startswith("error: ") and "not a video" in ran.stdout
    assert len(ran.stdout.splitlines()) == 1
