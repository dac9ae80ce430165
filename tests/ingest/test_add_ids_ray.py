"""`add-ids --ray`: the same stages on a local Ray store what the single-process run stores.

A local Ray is started by the run itself (as the command line does). TinyEmbedder is
the model: the embedding actors build it in their own processes, importing it from
this checkout, whose root is put on their PYTHONPATH. Without Ray installed these tests
skip, except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import dataclasses
import gc
import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from indexer.errors import ModelError
from indexer.ingest.idlist import IdListSummary, add_video_ids
from indexer.ingest.ray_backfill import RayOptions, add_video_ids_ray, check_address
from indexer.service import Service, build_service
from indexer.settings import Settings
from indexer.store.schema import embeddings, videos
from indexer.youtube.gone import gone_reasons
from search.cli import app
from search.eval import samples
from tests.fakes.embedder import TinyEmbedder
from tests.fakes.youtube import FakeVideo, FakeYouTube, photo_catalogue

pytestmark = pytest.mark.ray

if importlib.util.find_spec("ray") is None:  # installed with the dev tools
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail("Ray is not installed: pip install -e '.[dev]'", pytrace=False)
    pytest.skip("Ray is not installed (pip install -e '.[dev]')", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
# Columns that differ between two runs by when they ran, not by what they stored.
WHEN = {"fetched_at", "details_fetched_at", "first_seen_at", "created_at"}


@pytest.fixture(autouse=True)
def collected() -> Iterator[None]:
    """Collect what a run left once it is over.

    Ray's driver objects are freed by the cyclic collector; on CPython 3.11.7 their
    finalizers running inside a later ast.parse (pytest importing and rewriting a module)
    make it fail with "AST constructor recursion depth mismatch".
    """
    yield
    gc.collect()


def _clock() -> datetime:
    return datetime(2026, 3, 2, 18, 0, tzinfo=UTC)


@pytest.fixture
def many(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeYouTube, list[str]]]:
    """300 ids: the photo catalogue's videos, plain ones, some gone, one corrupt, unknown ids."""
    photos, searches = photo_catalogue()
    plain = []
    for i in range(240):
        plain.append(FakeVideo(
            video_id=samples.video_id_for(f"ray:{i}"), title=f"clip {i}",
            channel_title=f"channel {i % 7}", view_count=i * 11, duration=f"PT{i % 50 + 1}M",
            thumbnail_missing=i % 60 == 5, deleted=i % 80 == 7, corrupt_thumbnail=i == 100))
    videos = [*photos, *plain]
    unknown = [samples.video_id_for(f"unknown:{i}") for i in range(3)]
    ids = [v.video_id for v in videos] + unknown
    ids = ids[:297] + unknown if len(ids) > 300 else ids
    with FakeYouTube(videos, searches) as fake:
        monkeypatch.setenv("YOUTUBE_API_KEY", fake.api_key)
        monkeypatch.setenv("THUMBSEARCH_YOUTUBE_ENDPOINT", fake.api_endpoint)
        monkeypatch.setenv("THUMBSEARCH_THUMBNAIL_BASE", fake.thumbnail_base)
        monkeypatch.setenv("THUMBSEARCH_ALLOWED_HOSTS", fake.thumbnail_host)
        # The actors import tests.fakes.embedder from this checkout.
        path = os.environ.get("PYTHONPATH", "")
        monkeypatch.setenv("PYTHONPATH", f"{ROOT}{os.pathsep}{path}" if path else str(ROOT))
        yield fake, ids


def _service(home: Path, made: list[Service], database_url: str | None = None) -> Service:
    settings = dataclasses.replace(
        Settings.from_env(), home=home,
        database_url=database_url or f"sqlite:///{home / 'thumbsearch.sqlite3'}")
    service = build_service(settings, embedder=TinyEmbedder(), clock=_clock,
                            sleep=lambda _s: None)
    made.append(service)
    return service


@pytest.fixture
def services() -> Iterator[list[Service]]:
    made: list[Service] = []
    yield made
    for service in made:
        service.close()


def _utc(value: Any) -> Any:
    # SQLite gives naive UTC datetimes back, PostgreSQL aware ones.
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def _stored(service: Service) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
    """Every video row (without its timestamps) and every vector, by video id."""
    with service.store.engine.connect() as conn:
        rows = {r["video_id"]: {k: _utc(v) for k, v in r.items() if k not in WHEN}
                for r in conn.execute(select(videos)).mappings()}
        vectors = {str(r.video_id): np.frombuffer(r.vector, dtype=np.float32)
                   for r in conn.execute(select(embeddings.c.video_id, embeddings.c.vector))}
    return rows, vectors


def _comparable(summary: IdListSummary) -> dict[str, Any]:
    data = summary.to_json()
    for key in ("gone", "failed"):
        data[key] = sorted(data[key], key=lambda g: g["video_id"])
    return data


def _same_both_ways(single: Service, on_ray: Service, ids: list[str],
                    options: RayOptions) -> IdListSummary:
    """Run both ways into their own stores, check they stored the same; the Ray summary."""
    expected = add_video_ids(single, ids)
    got = add_video_ids_ray(on_ray, ids, options, model=TinyEmbedder)
    assert _comparable(got) == _comparable(expected)
    assert got.run.enriched == got.run.new and got.unenriched == 0
    rows, vectors = _stored(on_ray)
    want_rows, want_vectors = _stored(single)
    assert rows == want_rows  # metadata, details, thumbnail digests
    assert set(vectors) == set(want_vectors) and len(vectors) == got.run.new
    for video_id, vector in vectors.items():
        np.testing.assert_allclose(vector, want_vectors[video_id], rtol=0, atol=1e-6)
    assert gone_reasons(on_ray.store, ids) == gone_reasons(single.store, ids)
    assert on_ray.index().size == single.index().size == got.run.new
    cached = sorted(p.name for p in on_ray.cache.root.rglob("*") if p.is_file())
    assert cached == sorted(p.name for p in single.cache.root.rglob("*") if p.is_file())
    return got


def test_a_local_ray_run_stores_what_the_single_process_run_stores(
        many: tuple[FakeYouTube, list[str]], services: list[Service], tmp_path: Path) -> None:
    fake, ids = many
    assert len(ids) == 300
    single = _service(tmp_path / "single", services)
    on_ray = _service(tmp_path / "ray", services)
    got = _same_both_ways(single, on_ray, ids, RayOptions(workers=2))
    assert got.run.new > 250 and len(got.gone) >= 7 and len(got.run.failed) == 2
    # Every thumbnail was downloaded once by each run, the gone ones included.
    assert set(fake.thumbnail_requests.values()) == {2}

    # Resume: what is stored or gone is neither fetched nor embedded again; only the
    # corrupt thumbnails, stored by neither run, are tried once more.
    corrupt = {f.video_id for f in got.run.failed}
    calls = fake.videos_calls
    again = add_video_ids_ray(_service(tmp_path / "ray", services), ids, RayOptions(workers=1),
                              model=TinyEmbedder)
    assert (again.run.new, again.run.known, again.run.enriched) == (0, got.run.new, 0)
    assert again.already_gone == len(got.gone) and again.gone == []
    assert {f.video_id for f in again.run.failed} == corrupt
    requested = fake.thumbnail_requests
    assert {v for v, n in requested.items() if n == 3} == corrupt
    assert set(requested.values()) == {2, 3}
    assert fake.videos_calls == calls
    assert on_ray.store.counts("tiny-test")["vectors"] == got.run.new


@pytest.mark.postgres
def test_on_postgresql_the_ray_run_stores_what_the_single_process_run_stores(
        many: tuple[FakeYouTube, list[str]], services: list[Service], tmp_path: Path,
        pg_url: str) -> None:
    _, ids = many
    single = _service(tmp_path / "single", services)
    on_ray = _service(tmp_path / "ray", services, database_url=pg_url)
    got = _same_both_ways(single, on_ray, ids[:80], RayOptions(workers=1))
    assert got.run.new > 60 and got.gone and got.run.failed


_HEAD = """
import logging, sys, time
import ray
ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.ERROR,
         log_to_driver=False)
print(ray.get_runtime_context().gcs_address, flush=True)
try:
    time.sleep(600)
except KeyboardInterrupt:
    ray.shutdown()
"""


@pytest.fixture
def cluster(many: tuple[FakeYouTube, list[str]], monkeypatch: pytest.MonkeyPatch,
            tmp_path: Path) -> Iterator[str]:
    """A running Ray cluster (its own process, token authentication on); its address."""
    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # as a client of such a cluster sets it
    errors = tmp_path / "head.err"
    with errors.open("w") as stderr, subprocess.Popen(
            [sys.executable, "-c", _HEAD], stdout=subprocess.PIPE, stderr=stderr,
            text=True) as head:
        try:
            assert head.stdout is not None
            address = head.stdout.readline().strip()
            assert address, errors.read_text()
            yield address
        finally:
            head.send_signal(signal.SIGINT)  # the head stops its Ray, then exits
            try:
                head.wait(timeout=60)
            except subprocess.TimeoutExpired:
                head.kill()


def test_a_running_cluster_is_joined_by_its_address(
        many: tuple[FakeYouTube, list[str]], services: list[Service], tmp_path: Path,
        cluster: str) -> None:
    _, ids = many
    single = _service(tmp_path / "single", services)
    on_ray = _service(tmp_path / "ray", services)
    got = _same_both_ways(single, on_ray, ids[:80], RayOptions(address=cluster, workers=1))
    assert got.run.new > 60 and got.gone and got.run.failed


class BrokenModel:
    """A model whose weights cannot be read: every embedding actor fails to build it."""

    def __call__(self) -> TinyEmbedder:
        raise ModelError("the weights of tiny-test cannot be read")


def test_a_model_failing_in_the_actors_is_raised_as_itself(
        many: tuple[FakeYouTube, list[str]], services: list[Service], tmp_path: Path) -> None:
    _, ids = many
    service = _service(tmp_path / "ray", services)
    with pytest.raises(ModelError) as raised:
        add_video_ids_ray(service, ids[:40], RayOptions(workers=1), model=BrokenModel(),
                          details=False)
    assert str(raised.value) == "the weights of tiny-test cannot be read"
    assert service.store.counts("tiny-test")["vectors"] == 0


def test_an_unreachable_address_is_one_line_and_exit_1(
        many: tuple[FakeYouTube, list[str]], tmp_path: Path, isolated_env: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _, ids = many
    listed = tmp_path / "ids.txt"
    listed.write_text("\n".join(ids[:5]) + "\n")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    for address, expected in (("127.0.0.1:1", "cannot reach the Ray cluster at 127.0.0.1:1"),
                              ("nowhere", "is not a Ray address"),
                              ("auto", "no Ray cluster runs on this machine")):
        result = runner.invoke(app, ["add-ids", str(listed), "--ray", address])
        assert result.exit_code == 1, result.output
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
        assert expected in result.stderr and "Traceback" not in result.output
    # nothing written: no database, lock or index (the directory is not even made)
    assert not isolated_env.exists() or not list(isolated_env.iterdir())


def test_the_word_after_ray_is_its_address_or_the_file(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from search.cli.add_ids import split_ray_option

    monkeypatch.chdir(tmp_path)
    Path("f.txt").write_text("dQw4w9WgXcQ\n")
    assert split_ray_option(["f.txt", "--ray"]) == ["f.txt", "--ray=local"]
    assert split_ray_option(["--ray", "f.txt"]) == ["--ray=local", "f.txt"]
    assert split_ray_option(["--ray", "-"]) == ["--ray=local", "-"]
    assert split_ray_option(["f.txt", "--ray", "--json"]) == ["f.txt", "--ray=local", "--json"]
    assert split_ray_option(["--ray", "10.0.0.1:6379", "f.txt"]) == [
        "--ray=10.0.0.1:6379", "f.txt"]
    assert split_ray_option(["f.txt", "--ray", "ray://head:10001"]) == [
        "f.txt", "--ray=ray://head:10001"]
    assert split_ray_option(["f.txt", "--ray", "auto", "--json"]) == [
        "f.txt", "--ray=auto", "--json"]
    assert split_ray_option(["f.txt", "--ray", "headnode"]) == ["f.txt", "--ray=headnode"]
    assert split_ray_option(["f.txt", "--ray=x:1"]) == ["f.txt", "--ray=x:1"]
    assert split_ray_option(["--", "--ray"]) == ["--", "--ray"]


def test_check_address_forms() -> None:
    check_address("auto")
    with pytest.raises(Exception, match="is not a Ray address"):
        check_address("head:99999")


def test_ray_missing_is_one_line_and_exit_1(tmp_path: Path, isolated_env: Path) -> None:
    # A `ray` module that cannot be imported, ahead of the installed one.
    shadow = tmp_path / "shadow"
    (shadow / "ray").mkdir(parents=True)
    (shadow / "ray" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'ray'\", name='ray')\n")
    listed = tmp_path / "ids.txt"
    listed.write_text("dQw4w9WgXcQ\n")
    env = {**os.environ, "PYTHONPATH": str(shadow), "THUMBSEARCH_HOME": str(isolated_env)}
    done = subprocess.run([sys.executable, "-c", "from search.cli import main; main()",
                           "add-ids", str(listed), "--ray", "--no-details"], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith("error: Ray is not installed: pip install 'thumbsearch[ray]'")
    assert not (isolated_env / "thumbsearch.sqlite3").exists()


def test_help_documents_the_ray_options() -> None:
    result = runner.invoke(app, ["add-ids", "--help"])
    assert result.exit_code == 0
    for text in ("--ray [ADDRESS]", "--ray-workers", "local Ray"):
        assert text in result.output
    bad = runner.invoke(app, ["add-ids", "ids.txt", "--ray", "--ray-workers", "0"])
    assert bad.exit_code == 2


@pytest.mark.slow
def test_cli_with_the_real_model_matches_the_single_process_json(
        many: tuple[FakeYouTube, list[str]], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake, _ = many
    cats = fake.searches["cats"]
    missing = next(v for v in fake.searches["coffee"] if fake.videos[v].thumbnail_missing)
    listed = tmp_path / "ids.txt"
    listed.write_text("\n".join([*cats, missing]) + "\n")
    outputs = []
    for home, extra in (("single", []), ("ray", ["--ray", "--ray-workers", "1"])):
        monkeypatch.setenv("THUMBSEARCH_HOME", str(tmp_path / home))
        result = runner.invoke(app, ["add-ids", str(listed), "--json", *extra])
        assert result.exit_code == 0, result.output
        outputs.append(json.loads(result.stdout))
    assert outputs[0] == outputs[1]
    assert (outputs[1]["new"], len(outputs[1]["gone"]), outputs[1]["enriched"]) == (3, 1, 3)
    vectors = []
    for home in ("single", "ray"):
        settings = dataclasses.replace(
            Settings.from_env(), home=tmp_path / home,
            database_url=f"sqlite:///{tmp_path / home / 'thumbsearch.sqlite3'}")
        with build_service(settings) as service:
            found = [service.store.get_vector(v, service.spec.model_id) for v in cats]
            vectors.append(np.stack([f[1] for f in found if f is not None]))
    np.testing.assert_allclose(vectors[1], vectors[0], rtol=0, atol=1e-4)


def test_a_ray_backfill_checks_its_stored_batches_against_the_watchlist(
        many: tuple[FakeYouTube, list[str]], services: list[Service], tmp_path: Path) -> None:
    from search.watch import add_to_watchlist, watch_matches

    fake, ids = many
    original = fake.videos[fake.searches["cats"][0]]
    copy = dataclasses.replace(original, video_id=samples.video_id_for("ray:copy"),
                               title="a copy", has_maxres=False)
    fake.publish([copy])
    listed = [*ids[:60], copy.video_id, original.video_id]
    found = []
    for name, run in (("single", lambda s: add_video_ids(s, listed)),
                      ("ray", lambda s: add_video_ids_ray(s, listed, RayOptions(workers=1),
                                                          model=TinyEmbedder))):
        service = _service(tmp_path / name, services)
        [item] = add_to_watchlist(service, [original.video_id], threshold=0.99)
        assert item.matches == []  # nothing stored yet
        summary = run(service)
        matches = watch_matches(service)
        assert summary.run.matches == len(matches) > 0
        assert {m.run_id for m in matches} == {summary.run.run_id}
        found.append(sorted((m.name, m.video_id, round(m.score, 5)) for m in matches))
    assert found[0] == found[1]
    assert (original.video_id, copy.video_id) in {(n, v) for n, v, _ in found[1]}
    assert original.video_id not in {v for _, v, _ in found[1]}  # never its own match
