"""The hard set's builder, and eval's scores, table and report per variant kind."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from bench.eval_table import table
from indexer.errors import InputError
from indexer.service import build_service
from indexer.settings import Settings
from search.cli import app
from search.eval.data import KINDS_FILE, load_labelled_set
from search.eval.edits import EDITS
from search.eval.evaluate import evaluate_sets
from search.eval.hardset import ORIGINAL_MAX, build_hardset
from search.eval.report import write_report
from search.eval.sets import TUXPAINT_STAMPS
from tests.fakes.embedder import TinyEmbedder

runner = CliRunner()
PHOTOS, DISTRACTORS = 3, 8


@pytest.fixture(scope="module")
def stamps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two stamps laid out as Tux Paint's (an object on transparency)."""
    root = tmp_path_factory.mktemp("stamps")
    (root / "animals" / "birds").mkdir(parents=True)
    for name, colour in (("robin", (200, 60, 20, 255)), ("crow", (20, 20, 20, 255))):
        stamp = Image.new("RGBA", (60, 40), (0, 0, 0, 0))
        stamp.paste(Image.new("RGBA", (30, 20), colour), (15, 10))
        stamp.save(root / "animals" / "birds" / f"{name}.png")
    return root


@pytest.fixture(scope="module")
def hard(stamps: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three packaged sample photos as queries, the other seven feeding distractors."""
    out = tmp_path_factory.mktemp("hard")
    build_hardset(out, sources=[], photos=PHOTOS, distractors=DISTRACTORS, seed=3, stamps=stamps)
    return out


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.jpg"))}


def test_every_kind_at_least_eight_variants_and_bounded_originals(hard: Path) -> None:
    photos = [p for p in hard.iterdir() if p.is_dir() and not p.name.startswith("distractor")]
    assert len(photos) == PHOTOS
    kinds = set()
    for folder in photos:
        files = sorted(p.name for p in folder.glob("*.jpg"))
        assert "original.jpg" in files and len(files) - 1 >= 8
        kinds.update(p.split(".")[0].split("_")[0] for p in files)
        with Image.open(folder / "original.jpg") as original:
            assert original.width <= ORIGINAL_MAX[0] and original.height <= ORIGINAL_MAX[1]
    assert set(EDITS) | {"tiny", "combo2", "combo3", "original"} <= kinds
    assert any(k.startswith("pillarbox-") for k in kinds)
    assert any(k.startswith("letterbox-") for k in kinds)  # china and flower are 3:2
    listed = set((hard / KINDS_FILE).read_text().split())
    assert kinds == listed


def test_distractors_never_come_from_a_query_photo(hard: Path) -> None:
    manifest = json.loads((hard / "hardset.json").read_text())
    queries = set(manifest["photos"])
    sources = manifest["distractors"]
    assert len(sources) == DISTRACTORS == len(list(hard.glob("distractor-*/*.jpg")))
    assert {s.split(":")[0] for s in sources.values()} == {"stamp", "tile"}
    assert not {s.split(":", 1)[1] for s in sources.values()} & queries
    labelled = load_labelled_set(hard)
    assert all(i.kind is None for i in labelled.items if i.label.startswith("distractor"))
    assert all(i.kind for i in labelled.items if not i.label.startswith("distractor"))


def test_deterministic_by_seed(hard: Path, stamps: Path, tmp_path: Path) -> None:
    build_hardset(tmp_path / "again", [], PHOTOS, DISTRACTORS, seed=3, stamps=stamps)
    assert _digests(tmp_path / "again") == _digests(hard)
    build_hardset(tmp_path / "other", [], PHOTOS, DISTRACTORS, seed=4, stamps=stamps)
    assert _digests(tmp_path / "other") != _digests(hard)


def test_builder_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="20 photos wanted, 10 found"):
        build_hardset(tmp_path / "x", [], photos=20, distractors=0, stamps=None)
    with pytest.raises(InputError, match="need photos that are not queries"):
        build_hardset(tmp_path / "y", [], photos=10, distractors=5, stamps=None)


def test_a_kind_not_listed_is_refused(hard: Path, tmp_path: Path) -> None:
    copy = tmp_path / "set"
    (copy / "a").mkdir(parents=True)
    for name in ("original.jpg", "blur.jpg"):
        Image.new("RGB", (32, 24), (9, 9, 9)).save(copy / "a" / name)
    (copy / KINDS_FILE).write_text("original\n")
    with pytest.raises(InputError, match="kind 'blur' is not listed"):
        load_labelled_set(copy)


def test_eval_by_kind_in_json_table_and_report(hard: Path, settings: Settings,
                                               tmp_path: Path) -> None:
    service = build_service(settings, embedder=TinyEmbedder())
    run = evaluate_sets(service, [hard], [1, 10])
    result = run.sets[0]
    data = run.to_json()["datasets"][0]
    kinds = data["kinds"]
    assert set(kinds) == set((hard / KINDS_FILE).read_text().split())
    assert sum(k["queries"] for k in kinds.values()) == data["queries"]
    assert kinds["original"]["queries"] == PHOTOS
    assert all(0.0 <= k["recall"]["1"] <= k["recall"]["10"] <= 1.0 for k in kinds.values())
    # The per-kind means weighted by their queries are the set's own.
    overall = sum(k["recall"]["1"] * k["queries"] for k in kinds.values()) / data["queries"]
    assert overall == pytest.approx(data["recall"]["1"], abs=1e-5)
    assert result.by_kind["pip"].queries == sum(1 for k in result.kinds if k == "pip")

    page = write_report(run, tmp_path / "report").read_text()
    assert "By variant kind" in page and "Worst pip queries" in page
    assert 'id="set-1-kind-combo3"' in page

    (tmp_path / "eval.json").write_text(json.dumps(run.to_json()))
    printed = table([tmp_path / "eval.json"])
    assert f"| {result.name}: mirror | " in printed


def test_sets_without_kinds_report_as_before(settings: Settings, tmp_path: Path) -> None:
    for label in ("a", "b"):
        (tmp_path / "set" / label).mkdir(parents=True)
        for n in range(2):
            Image.new("RGB", (32, 24), (n * 90, 40, 200 if label == "a" else 0)).save(
                tmp_path / "set" / label / f"x_{n}.jpg")
    run = evaluate_sets(build_service(settings, embedder=TinyEmbedder()), [tmp_path / "set"])
    assert "kinds" not in run.to_json()["datasets"][0] and not run.sets[0].by_kind


@pytest.mark.slow
@pytest.mark.skipif(not TUXPAINT_STAMPS.is_dir(), reason="needs tuxpaint-stamps-default")
def test_default_model_on_a_small_hard_set(tmp_path: Path) -> None:
    out = tmp_path / "hard"
    build_hardset(out, [], photos=6, distractors=60, seed=0)
    result = runner.invoke(app, ["eval", str(out), "-k", "1,10"])
    assert result.exit_code == 0, result.output
    assert "by variant kind:" in result.output and "pillarbox-mq" in result.output
