"""``thumbsearch eval`` and ``make-neardup``: datasets, the embedding cache, reports, the corpus."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from indexer.errors import InputError
from indexer.ingest.local import add_paths
from indexer.service import build_service
from indexer.settings import DEFAULT_MODEL, Settings
from search.cli import app
from search.eval import samples
from search.eval.evaluate import evaluate_corpus, evaluate_sets, parse_ks
from search.eval.neardup import make_neardup
from search.eval.report import write_report
from tests.fakes.embedder import TinyEmbedder
from tests.fakes.progress import RecordingProgress

runner = CliRunner()


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three small packaged photos as files (the generator's input)."""
    folder = tmp_path_factory.mktemp("photos")
    for name in ("chelsea", "coffee", "rocket"):
        photo = samples.sample_photos()[name]
        photo.thumbnail((320, 320))
        photo.save(folder / f"{name}.png")
    return folder


@pytest.fixture(scope="module")
def neardup_set(photo_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("neardup")
    make_neardup(photo_dir, out, variants=3, seed=1)
    return out


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*.jpg"))}


def test_neardup_layout_and_determinism(photo_dir: Path, neardup_set: Path,
                                        tmp_path: Path) -> None:
    assert sorted(p.name for p in neardup_set.iterdir()) == ["chelsea", "coffee", "rocket"]
    files = sorted(p.name for p in (neardup_set / "coffee").iterdir())
    assert len(files) == 4 and "original.jpg" in files
    sizes = set()
    for path in neardup_set.rglob("0*.jpg"):
        with Image.open(path) as image:
            sizes.add(image.size)
    assert sizes <= set(samples.THUMBNAIL_SIZES.values())
    again = tmp_path / "again"
    make_neardup(photo_dir, again, variants=3, seed=1)
    assert _digests(again) == _digests(neardup_set)
    other = tmp_path / "other"
    make_neardup(photo_dir, other, variants=3, seed=2)
    assert _digests(other) != _digests(neardup_set)


def test_make_neardup_command(photo_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["make-neardup", str(photo_dir), str(tmp_path / "o"),
                                 "--variants", "2", "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert "wrote 9 images in 3 label folders" in result.output
    result = runner.invoke(app, ["make-neardup", str(tmp_path / "missing"), str(tmp_path / "x")])
    assert result.exit_code == 1 and "not a folder" in result.output


def test_evaluate_sets_caches_embeddings(neardup_set: Path, settings: Settings,
                                         tmp_path: Path) -> None:
    tiny = TinyEmbedder()
    service = build_service(settings, embedder=tiny)
    broken = neardup_set.parent / f"{neardup_set.name}-broken"
    broken.mkdir()
    (broken / "x").mkdir()
    (broken / "x" / "bad.jpg").write_bytes(b"not an image")
    Image.new("RGB", (64, 48), (200, 30, 90)).save(broken / "x" / "a.jpg")
    (broken / "x" / "b.jpg").write_bytes((broken / "x" / "a.jpg").read_bytes())
    heard = RecordingProgress()
    run = evaluate_sets(service, [neardup_set, broken], [1, 5], progress=heard)
    first, second = run.sets
    assert run.model == "tiny-test"
    assert (first.scores.queries, first.scores.labels, first.embedded) == (12, 3, 12)
    assert 0.0 <= first.scores.recall[1] <= 1.0 and set(first.scores.recall) == {1, 5}
    assert second.failed and "bad.jpg" in second.failed[0][0]
    assert second.embedded == 1  # two files with the same bytes are embedded once
    assert second.scores.recall[1] == 1.0
    assert heard.plan.text == "2 sets, 15 images" and heard.plan.unit == "images"
    assert (heard.items(first.name), heard.items(second.name)) == (12, 3)
    assert heard.events[-1] == ("ended", "14 images scored (13 embedded, 1 from the cache)")
    batches = list(tiny.batches)
    again = evaluate_sets(service, [neardup_set], [1, 5])
    assert tiny.batches == batches and again.sets[0].embedded == 0
    assert again.sets[0].scores == first.scores
    assert (settings.home / "cache" / "eval" / "tiny-test.sqlite3").exists()

    page = write_report(run, tmp_path / "report")
    html = page.read_text()
    assert "recall@5" in html and "Worst queries" in html and first.name in html
    assert (tmp_path / "report" / "recall.png").stat().st_size > 1000
    assert (tmp_path / "report" / "scores-1.png").exists()
    thumbs = list((tmp_path / "report" / "thumbs").glob("*.jpg"))
    assert thumbs and "thumbs/" in html and "http" not in html


def test_csv_dataset_and_approximate_index(neardup_set: Path, settings: Settings,
                                           tmp_path: Path) -> None:
    lines = ["path,label"] + [f"{p},{p.parent.name}" for p in sorted(neardup_set.rglob("*.jpg"))]
    csv_path = tmp_path / "set.csv"
    csv_path.write_text("\n".join(lines) + "\n")
    service = build_service(settings, embedder=TinyEmbedder())
    run = evaluate_sets(service, [csv_path], [1, 3], index_type="hnsw")
    data = run.to_json()["datasets"][0]
    assert data["name"] == "set" and data["queries"] == 12
    assert set(data["recall"]) == {"1", "3"} and data["index"]["type"] == "hnsw"
    assert data["index"]["recall_vs_exact"]["3"] == 1.0  # 12 vectors: HNSW is exact here
    bad = tmp_path / "bad.csv"
    bad.write_text("nothing-here.jpg,a\n")
    with pytest.raises(InputError, match="neither an image file"):
        evaluate_sets(service, [bad])


def test_corpus_evaluation_uses_stored_vectors(tmp_path: Path, settings: Settings) -> None:
    videos = samples.write_ytdlp_folder(tmp_path / "yt", variants_per_photo=1, seed=0)
    tiny = TinyEmbedder()
    service = build_service(settings, embedder=tiny)
    add_paths(service, [tmp_path / "yt"])
    stored_batches = list(tiny.batches)
    labels = tmp_path / "labels.csv"
    labels.write_text("\n".join(f"{v.video_id},{v.photo}" for v in videos)
                      + "\nzzzzzzzzzzz,nowhere\n")
    run = evaluate_corpus(service, labels_file=labels, ks=[1])
    result = run.sets[0]
    assert result.scores.queries == len(videos) and result.scores.labels == 10
    assert result.failed == [("zzzzzzzzzzz", "not in the corpus for model tiny-test")]
    by_channel = evaluate_corpus(service, label_by="channel", ks=[1, 10]).sets[0]
    assert by_channel.scores.labels >= 2
    assert tiny.batches == stored_batches  # nothing embedded again
    with pytest.raises(InputError, match="--label-by"):
        evaluate_corpus(service, ks=[1])


@pytest.mark.parametrize(("args", "code", "message"), [
    (["eval", "/no/such/set"], 1, "no such dataset"),
    (["eval"], 2, "--corpus"),
    (["eval", "x", "--k", "a,b"], 2, "-k/--top-k must be"),
    (["eval", "x", "-k", "a,b"], 2, "-k/--top-k must be"),
    (["eval", "x", "--top-k", "1,2000"], 2, "-k/--top-k values must be within"),
    (["eval", "x", "--index", "lsh"], 2, "--index must be"),
    (["eval", "--corpus", "--label-by", "channel"], 1, "corpus"),
    (["eval", "--corpus", "--label-by", "colour"], 2, "--label-by must be"),
    (["make-neardup"], 2, "give SRC and OUT"),
])
def test_eval_errors_are_one_line(args: list[str], code: int, message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert message in result.output and "Traceback" not in result.output


def test_parse_ks() -> None:
    assert parse_ks("10,1,5,5") == [1, 5, 10]
    with pytest.raises(InputError):
        parse_ks("0")


# Measured with efficientnet-lite0 on this set (3 variants per photo, seed 0, the ten
# packaged photos): recall@1 1.000, mAP 0.998. The assertion leaves a margin.
NEARDUP_RECALL_AT_1 = 0.95


@pytest.mark.slow
def test_default_model_on_packaged_neardup_set(tmp_path: Path) -> None:
    out = tmp_path / "neardup"
    result = runner.invoke(app, ["make-neardup", "--sample-photos", str(out), "--variants", "3"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["eval", str(out), "--json", "-k", "1,10",
                                 "--report", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["model"] == DEFAULT_MODEL
    scores = data["datasets"][0]
    assert (scores["queries"], scores["labels"], scores["distractors"]) == (40, 10, 0)
    assert scores["recall"]["1"] >= NEARDUP_RECALL_AT_1, scores
    assert (tmp_path / "report" / "index.html").exists()
    assert result.stderr.splitlines()[-1] == f"wrote {tmp_path / 'report' / 'index.html'}"
