"""A corpus built with an earlier default model keeps answering after the default changes,
until it is re-embedded; a named model is always the one used."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.ingest.local import add_paths
from indexer.service import build_service, keep_corpus_model
from indexer.settings import DEFAULT_MODEL, PREVIOUS_DEFAULT_MODELS, Settings
from search.eval.samples import write_ytdlp_folder
from search.neighbours import similar_to_video
from tests.fakes.embedder import StandInEmbedder

OLD = PREVIOUS_DEFAULT_MODELS[0]


@pytest.fixture(scope="module")
def old_home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A home whose vectors and index were made by the earlier default model."""
    root = tmp_path_factory.mktemp("upgrade")
    samples = write_ytdlp_folder(root / "thumbs", variants_per_photo=1)
    settings = Settings.from_env({"THUMBSEARCH_HOME": str(root / "home")})
    with build_service(settings, embedder=StandInEmbedder(OLD, 1280, (224, 224))) as service:
        service.prepare_for_writing()
        add_paths(service, [root / "thumbs"])
        similar_to_video(service, samples[0].video_id, 3)  # builds and saves the index
    return root / "home", samples[0].video_id


def test_the_default_changed_and_the_old_one_is_remembered() -> None:
    assert DEFAULT_MODEL != OLD
    assert not Settings.from_env({}).model_chosen
    assert Settings.from_env({"THUMBSEARCH_MODEL": OLD}).model_chosen
    chosen = Settings.from_env({}).with_model(DEFAULT_MODEL)
    assert chosen.model == DEFAULT_MODEL and chosen.model_chosen


def test_an_old_corpus_keeps_its_model_for_lookups(old_home: tuple[Path, str]) -> None:
    home, video_id = old_home
    assert (home / "index" / f"{OLD}.json").is_file()
    settings = Settings.from_env({"THUMBSEARCH_HOME": str(home)})
    assert keep_corpus_model(settings).model == OLD
    with build_service(settings, lookups_only=True) as service:
        assert service.spec.model_id == OLD
        result = similar_to_video(service, video_id, 3)  # by id: no model is loaded
    assert result.model == OLD and len(result.results) == 3


def test_a_named_model_is_used_even_on_an_old_corpus(old_home: tuple[Path, str]) -> None:
    home, _ = old_home
    for settings in (Settings.from_env({"THUMBSEARCH_HOME": str(home),
                                        "THUMBSEARCH_MODEL": DEFAULT_MODEL}),
                     Settings.from_env({"THUMBSEARCH_HOME": str(home)}).with_model(
                         DEFAULT_MODEL)):
        assert keep_corpus_model(settings).model == DEFAULT_MODEL


def test_a_new_corpus_and_a_moved_one_use_the_default(tmp_path: Path) -> None:
    fresh = Settings.from_env({"THUMBSEARCH_HOME": str(tmp_path / "fresh")})
    assert keep_corpus_model(fresh).model == DEFAULT_MODEL
    moved = tmp_path / "moved"
    (moved / "index").mkdir(parents=True)
    for name in (f"{OLD}.json", f"{DEFAULT_MODEL}.json"):  # both indexed: the default wins
        model = name.removesuffix(".json")
        (moved / "index" / name).write_text(f'{{"model": "{model}", "dim": 1280}}')
    assert keep_corpus_model(Settings.from_env({"THUMBSEARCH_HOME": str(moved)})).model == (
        DEFAULT_MODEL)
    # A metadata file that is not an index's (another name inside) does not count.
    odd = tmp_path / "odd"
    (odd / "index").mkdir(parents=True)
    (odd / "index" / f"{OLD}.json").write_text('{"model": "something else"}')
    assert keep_corpus_model(Settings.from_env({"THUMBSEARCH_HOME": str(odd)})).model == (
        DEFAULT_MODEL)
