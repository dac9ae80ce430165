"""``thumbsearch doctor`` finds what is wrong; a lost or torn snapshot is rebuilt from SQLite."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete
from typer.testing import CliRunner

from indexer.doctor import check_corpus
from indexer.service import Service, build_service
from indexer.settings import Settings
from indexer.store.schema import embeddings
from search.cli import app
from tests.fakes.corpus import seed_corpus

runner = CliRunner()
COUNT = 60


@pytest.fixture
def service(isolated_env: Path) -> Service:
    """A home with COUNT videos of the default model (random vectors, no TensorFlow)."""
    built = build_service(Settings.from_env())
    seed_corpus(built, COUNT)
    built.close()
    return build_service(Settings.from_env())


def _snapshot(service: Service) -> Path:
    return service.settings.index_dir / f"{service.spec.model_id}.faiss"


def _meta(service: Service) -> Path:
    return service.settings.index_dir / f"{service.spec.model_id}.json"


def _doctor() -> tuple[int, str]:
    result = runner.invoke(app, ["doctor", "--sample", "1000"])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


@pytest.mark.usefixtures("backend")
def test_a_healthy_corpus_is_ok(service: Service) -> None:
    code, output = _doctor()
    assert code == 0 and output.startswith("ok: the database and the index agree\n"), output
    data = json.loads(runner.invoke(app, ["doctor", "--json"]).output)
    assert data["videos"] == data["vectors"] == data["index_size"] == COUNT
    assert data["sampled"] == COUNT and data["ok"]


def _truncate(service: Service) -> None:
    path = _snapshot(service)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def _delete(service: Service) -> None:
    _snapshot(service).unlink()


def _zero(service: Service) -> None:
    _snapshot(service).write_bytes(b"")


def _garbage_meta(service: Service) -> None:
    _meta(service).write_text("{not json")


def _watermark_ahead(service: Service) -> None:
    meta = json.loads(_meta(service).read_text())
    meta["watermark"] = 10**6
    _meta(service).write_text(json.dumps(meta))


def _other_model(service: Service) -> None:
    meta = json.loads(_meta(service).read_text())
    meta["model"] = "vgg16"
    _meta(service).write_text(json.dumps(meta))


def _changed_vector(service: Service) -> None:
    index = service.index()
    row = int(index.ids()[5])
    index.remove(np.array([row]))
    index._tail.add_with_ids(np.ones((1, service.spec.dim), np.float32) / 40,
                             np.array([row], np.int64))
    index.save()


def _orphan(service: Service) -> None:
    row = int(service.index().ids()[3])
    service.store.transact("test", lambda conn: conn.execute(
        delete(embeddings).where(embeddings.c.id == row)))


DAMAGE: dict[str, tuple[Callable[[Service], None], str]] = {
    "truncated snapshot": (_truncate, "truncated or corrupt"),
    "deleted snapshot": (_delete, "no index snapshot"),
    "zero-byte snapshot": (_zero, "truncated or corrupt"),
    "garbage metadata": (_garbage_meta, "unreadable"),
    "watermark ahead": (_watermark_ahead, "past the database's last row"),
    "other model": (_other_model, "built by 'vgg16'"),
    "changed vector": (_changed_vector, "sampled vectors differ"),
    "orphan id": (_orphan, "no row in the database"),
}


@pytest.mark.parametrize("name", sorted(DAMAGE))
@pytest.mark.usefixtures("backend")
def test_doctor_names_the_damage_and_rebuild_repairs_it(service: Service, name: str) -> None:
    damage, message = DAMAGE[name]
    damage(service)
    service.close()
    code, output = _doctor()
    assert code == 1 and message in output, output
    assert "thumbsearch index rebuild" in output or "reembed" in output
    rebuilt = runner.invoke(app, ["index", "rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    expected = COUNT - (1 if name == "orphan id" else 0)
    assert f"{expected} vectors" in rebuilt.output
    code, output = _doctor()
    if name == "orphan id":  # the video lost its vector: the index is fine, reembed is due
        assert code == 1 and output.count("problem:") == 1 and "reembed" in output, output
    else:
        assert code == 0, output


@pytest.mark.parametrize("damage", [_truncate, _delete, _zero])
@pytest.mark.usefixtures("backend")
def test_power_loss_the_next_open_rebuilds_from_sqlite(service: Service,
                                                       damage: Callable[[Service], None]) -> None:
    damage(service)
    service.close()
    with build_service(Settings.from_env()) as fresh:
        index = fresh.index()
        assert index.size == COUNT
        assert sorted(index.ids().tolist()) == list(range(1, COUNT + 1))
    result = runner.invoke(app, ["similar", "rAAAAAAAAAA", "-k", "5", "--json"])
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["results"]) == 5


@pytest.mark.usefixtures("backend")
def test_missing_vectors_are_reported(service: Service) -> None:
    from indexer.records import VideoMeta
    from indexer.store.schema import videos

    service.store.transact("test", lambda conn: conn.execute(videos.insert().values(
        video_id="zzzzzzzzzzz", source="test", title="", description="", channel_id="",
        channel_title="", thumbnail_url="", fetched_at=service.store.now(),
        created_at=service.store.now())))
    assert VideoMeta  # the row above is a video without a vector
    report = check_corpus(service)
    service.close()
    assert any("zzzzzzzzzzz" in p and "reembed" in p for p in report.problems)


def test_an_empty_home_is_ok(isolated_env: Path) -> None:
    code, output = _doctor()
    assert code == 0, output
    assert runner.invoke(app, ["index", "rebuild"]).exit_code == 0
