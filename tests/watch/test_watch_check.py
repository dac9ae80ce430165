"""The watchlist's check of newly stored vectors (a real SQLite file, synthetic vectors), and
`thumbsearch watch` on a small corpus without a model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import indexer.service
from indexer.ingest.watch import WatchCheck
from indexer.service import build_service
from indexer.settings import Settings
from indexer.store.db import make_engine
from indexer.store.metadata import Store
from indexer.store.watchlist import (
    WatchItem,
    add_watch_item,
    remove_watch_items,
    watch_items_of,
    watch_matches_of,
)
from search.cli import app
from tests.cli.titled_corpus import ORIGINALS, REUPLOADS, seed_titled_corpus
from tests.fakes.clock import Clock

MODEL, DIM = "m", 16
runner = CliRunner()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        built = Store(engine, Clock(datetime(2026, 12, 3, 12, 0, tzinfo=UTC)))
        built.upgrade()
        yield built
    finally:
        engine.dispose()


def _unit(seed: int) -> np.ndarray:
    vector = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return vector / np.linalg.norm(vector)


def _at(base: np.ndarray, cosine: float, seed: int) -> np.ndarray:
    """A unit vector whose cosine with the unit vector ``base`` is ``cosine``."""
    other = _unit(seed)
    other -= (other @ base) * base
    other /= np.linalg.norm(other)
    return (cosine * base + np.sqrt(1 - cosine**2) * other).astype(np.float32)


def _watch(store: Store, name: str, vector: np.ndarray, threshold: float,
           video: str | None = None) -> WatchItem:
    return add_watch_item(store, name=name, kind="video" if video else "image",
                          source=video or f"{name}.jpg", video_id=video, model=MODEL,
                          vector=vector, threshold=threshold)


def _pairs(store: Store) -> list[tuple[str, str, int | None]]:
    return sorted((m.name, m.video_id, m.run_id) for m in watch_matches_of(store))


def test_each_item_has_its_own_threshold(store: Store) -> None:
    base = _unit(1)
    _watch(store, "strict", base, 0.95)
    _watch(store, "loose", base, 0.80)
    check = WatchCheck(store, MODEL, run_id=7)
    new = np.stack([_at(base, 0.97, 2), _at(base, 0.90, 3), _at(base, 0.70, 4)])
    assert check.check(["clear", "between", "far"], new) == 3
    assert _pairs(store) == [("loose", "between", 7), ("loose", "clear", 7),
                             ("strict", "clear", 7)]
    assert check.found == 3 and check.watched == 2
    scores = {(m.name, m.video_id): m.score for m in watch_matches_of(store)}
    assert scores[("strict", "clear")] == pytest.approx(0.97, abs=1e-5)


def test_the_watched_video_is_never_its_own_match(store: Store) -> None:
    base = _unit(1)
    _watch(store, "mine", base, 0.9, video="ownvideo123")
    check = WatchCheck(store, MODEL, run_id=1)
    assert check.check(["ownvideo123", "copy1234567"], np.stack([base, base])) == 1
    assert _pairs(store) == [("mine", "copy1234567", 1)]


def test_vectors_of_another_dimension_or_model_are_ignored(store: Store) -> None:
    base = _unit(1)
    _watch(store, "item", base, 0.5)
    check = WatchCheck(store, MODEL, run_id=1)
    assert check.check(["wider"], np.ones((1, DIM + 1), np.float32)) == 0
    assert check.check(["flat"], np.ones(DIM, np.float32)) == 0  # not (n, dim)
    assert check.check([], np.zeros((0, DIM), np.float32)) == 0
    other_model = WatchCheck(store, "another-model", run_id=1)
    assert other_model.check(["same"], base[None, :]) == 0 and other_model.watched == 0
    assert _pairs(store) == []


def test_items_added_and_removed_between_checks_are_seen(store: Store) -> None:
    first, second = _unit(1), _unit(2)
    check = WatchCheck(store, MODEL, run_id=3)
    assert check.check(["before12345"], first[None, :]) == 0  # nothing watched yet
    _watch(store, "first", first, 0.9)
    assert check.check(["batch1xxxxx"], first[None, :]) == 1  # added between two checks
    remove_watch_items(store, ["first"])
    _watch(store, "second", second, 0.9)  # the same count of items, a new one
    assert check.check(["batch2xxxxx", "batch2yyyyy"], np.stack([first, second])) == 1
    assert _pairs(store) == [("second", "batch2yyyyy", 3)]  # the removed one went with its
    remove_watch_items(store, ["second"])  # matches, and no longer matches
    assert check.check(["batch3xxxxx"], second[None, :]) == 0 and check.watched == 0
    assert _pairs(store) == []


def test_a_pair_is_recorded_once_across_two_checkers(store: Store) -> None:
    base = _unit(1)
    _watch(store, "item", base, 0.9)
    worker_a, worker_b = WatchCheck(store, MODEL, run_id=1), WatchCheck(store, MODEL, run_id=2)
    new = np.stack([base, _at(base, 0.95, 5)])
    assert worker_a.check(["copy-one123", "copy-two123"], new[:1]) == 1
    assert worker_b.check(["copy-one123", "copy-two123"][:2], new) == 1  # only the new pair
    assert worker_a.check(["copy-two123"], new[1:]) == 0
    assert (worker_a.found, worker_b.found) == (1, 1)
    assert _pairs(store) == [("item", "copy-one123", 1), ("item", "copy-two123", 2)]
    assert watch_items_of(store)[0].matches == 2


# -- `thumbsearch watch` on a small corpus ------------------------------------------------


@pytest.fixture
def corpus(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The titled corpus (four thumbnails, three re-uploads each) under the default model's
    id, stored without loading the model; thumbnails from an address nothing listens on."""
    monkeypatch.setenv("THUMBSEARCH_THUMBNAIL_BASE", "http://127.0.0.1:9/vi")
    monkeypatch.setenv("THUMBSEARCH_ALLOWED_HOSTS", "127.0.0.1:9")

    def no_retries(settings: Settings, max_seconds: float | None = None) -> Any:
        from indexer.images.fetch import HttpImageFetcher

        return HttpImageFetcher(settings.image_hosts, timeout=2, retries=0)

    monkeypatch.setattr(indexer.service, "image_fetcher", no_retries)  # refused at once
    with build_service(settings) as service:
        return seed_titled_corpus(service)


def _run(*args: str) -> Any:
    result = runner.invoke(app, ["watch", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args or "json" in args else result.stdout


def _fails(args: list[str], code: int, message: str) -> None:
    result = runner.invoke(app, ["watch", *args])
    assert result.exit_code == code, result.output
    assert result.stdout == "" and "Traceback" not in result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert message in result.stderr, result.stderr


def test_watch_add_finds_the_stored_matches_once(corpus: list[str]) -> None:
    original = corpus[0]
    copies = [corpus[copy * ORIGINALS] for copy in range(1, REUPLOADS + 1)]
    added = _run("add", original, "--json")
    assert [(a["name"], a["kind"], a["video_id"]) for a in added] == [
        (original, "video", original)]
    assert sorted(m["video_id"] for m in added[0]["matches"]) == sorted(copies)
    assert {m["run_id"] for m in added[0]["matches"]} == {None}  # found by `watch add`
    assert added[0]["more_may_match"] is False
    text = _run("add", corpus[1], "--name", "second one", "--threshold", "0.999")
    assert text.startswith("watching second one (video")
    listed = {item["name"]: item for item in _run("list", "--json")}
    assert listed[original]["matches_total"] == REUPLOADS
    assert listed["second one"]["threshold"] == 0.999
    matches = _run("matches", "--json")
    assert sorted(m["video_id"] for m in matches if m["watch"] == original) == sorted(copies)
    assert len(matches) == len({(m["watch"], m["video_id"]) for m in matches})


def test_a_bad_reference_adds_nothing(corpus: list[str], tmp_path: Path) -> None:
    _fails(["add", corpus[2], "not-an-id"], 1, "not-an-id")
    _fails(["add", "--image", str(tmp_path / "missing.jpg")], 1, "missing.jpg: no such file")
    _fails(["add", corpus[2], "--image", "http://127.0.0.1:9/x.jpg"], 1, "127.0.0.1:9")
    _fails(["add", "dQw4w9WgXcQ"], 1, "cannot download")  # not stored, host unreachable
    assert _run("list", "--json") == []
    assert _run("matches", "--json") == []


def test_a_taken_name_is_refused_and_unknown_names_remove_nothing(corpus: list[str]) -> None:
    _run("add", corpus[0], "--name", "launch")
    _fails(["add", corpus[1], "--name", "launch"], 1, "already named 'launch'")
    before = _run("list", "--json")
    _fails(["remove", "launch", "nothing-here"], 1, "nothing-here")
    assert _run("list", "--json") == before  # all or nothing
    _run("remove", "launch")
    assert _run("list", "--json") == [item for item in before if item["name"] != "launch"]


def test_watch_matches_filters_and_formats(corpus: list[str]) -> None:
    _run("add", corpus[0], "--name", "zero")
    _run("add", corpus[1], "--name", "one")
    everything = _run("matches", "--json")
    assert len(everything) == 2 * REUPLOADS
    named = _run("matches", "--name", "one", "--format", "json")
    assert {m["watch"] for m in named} == {"one"} and len(named) == REUPLOADS
    ids = _run("matches", "--name", "zero", "--format", "ids").split()
    assert sorted(ids) == sorted(corpus[copy * ORIGINALS] for copy in range(1, REUPLOADS + 1))
    assert len(_run("matches", "--since", "1h", "--json")) == 2 * REUPLOADS
    later = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert _run("matches", "--since", later, "--json") == []
    assert "no matches in that time" in _run("matches", "--since", later)
    _fails(["matches", "--since", "soon"], 2, "--since")
    _fails(["matches", "--name", "nobody"], 1, "nobody")


def test_a_watched_video_is_checked_by_runs_of_another_model_through_its_stored_vector(
        store: Store) -> None:
    from indexer.records import VideoMeta

    # The item was embedded with MODEL; the corpus then moved to "next" (reembed), which
    # stored the watched video's vector under it. An image item has no such vector.
    _watch(store, "video-item", _unit(1), 0.8, video="watchedvid1")
    _watch(store, "image-item", _unit(5), 0.8)
    moved = _unit(9)  # the watched video under the other model
    store.add_embedded([VideoMeta("watchedvid1", "youtube", title="watched")], moved[None, :],
                       "next")
    check = WatchCheck(store, "next", run_id=4)
    assert check.watched == 1  # the video item, through its stored vector
    new = np.stack([_at(moved, 0.9, 2), _at(_unit(1), 0.99, 3), _at(_unit(5), 0.99, 6)])
    assert check.check(["copy", "like-old-vector", "like-image"], new) == 1
    assert _pairs(store) == [("video-item", "copy", 4)]
