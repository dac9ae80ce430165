"""`add` of local files through the real stages, with a tiny model (no TensorFlow)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from indexer.errors import ImagePathError
from indexer.ingest.local import add_paths, meta_for_file
from indexer.service import build_service
from indexer.settings import Settings
from tests.fakes.embedder import TinyEmbedder


def _photo(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, size=(18, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).resize((320, 180)).save(path, "JPEG", quality=95)
    return path


def test_ytdlp_names_and_info_json_give_id_and_metadata(tmp_path: Path) -> None:
    image = _photo(tmp_path / "My video [dQw4w9WgXcQ].jpg", 0)
    (tmp_path / "My video [dQw4w9WgXcQ].info.json").write_text(json.dumps({
        "id": "dQw4w9WgXcQ", "title": "My video: the real title", "channel_id": "UC123",
        "channel": "Chan", "upload_date": "20240131", "description": "d",
        "thumbnail": "https://i.ytimg.com/vi/dQw4w9WgXcQ/maxresdefault.jpg"}))
    meta = meta_for_file(image)
    assert meta.video_id == "dQw4w9WgXcQ"
    assert meta.title == "My video: the real title"
    assert meta.channel_title == "Chan"
    assert meta.published_at is not None and meta.published_at.isoformat() == (
        "2024-01-31T00:00:00+00:00")
    bare = _photo(tmp_path / "Other [-abcDEF1234].jpg", 1)
    assert meta_for_file(bare).video_id == "-abcDEF1234"
    assert meta_for_file(bare).title == "Other"


def test_plain_images_get_a_stable_content_id(tmp_path: Path) -> None:
    a = _photo(tmp_path / "a.jpg", 0)
    b = tmp_path / "copy.jpg"
    b.write_bytes(a.read_bytes())
    assert meta_for_file(a).video_id == meta_for_file(b).video_id
    assert meta_for_file(a).video_id.startswith("local:")
    assert meta_for_file(a).video_id != meta_for_file(_photo(tmp_path / "c.jpg", 2)).video_id


@pytest.mark.usefixtures("backend")
def test_add_stores_embeds_in_batches_and_skips_known(tmp_path: Path,
                                                      settings: Settings) -> None:
    folder = tmp_path / "thumbs"
    (folder / "sub").mkdir(parents=True)
    for i in range(5):
        _photo(folder / f"p{i}.jpg", i)
    _photo(folder / "sub" / "deep.png", 9)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (folder / "notes.txt").write_text("ignored: not an image suffix")
    embedder = TinyEmbedder()
    service = build_service(settings, embedder=embedder)
    second = build_service(settings, embedder=TinyEmbedder())
    try:
        summary = add_paths(service, [folder])
        assert summary.new == 6
        assert summary.known == 0
        assert [f.video_id for f in summary.failed] == [
            meta_for_file(folder / "broken.jpg").video_id]
        assert "corrupt" in summary.failed[0].reason or "not an image" in summary.failed[0].reason
        assert embedder.batches == [6]
        again = add_paths(second, [folder])
        assert (again.new, again.known, len(again.failed)) == (0, 6, 1)
        assert service.store.counts("tiny-test")["vectors"] == 6
    finally:
        service.close()
        second.close()


@pytest.mark.usefixtures("backend")
def test_add_refuses_missing_paths_before_writing(tmp_path: Path, settings: Settings) -> None:
    with build_service(settings, embedder=TinyEmbedder()) as service:
        with pytest.raises(ImagePathError, match="no such file"):
            add_paths(service, [tmp_path / "missing"])
        assert not service.store.exists()
        empty = tmp_path / "empty"
        empty.mkdir()
        with pytest.raises(ImagePathError, match="no image files"):
            add_paths(service, [empty])


def test_batches_are_split_at_batch_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    for i in range(7):
        _photo(tmp_path / f"p{i}.jpg", i)
    settings = dataclasses.replace(Settings.from_env(), batch_size=3)
    embedder = TinyEmbedder()
    summary = add_paths(build_service(settings, embedder=embedder), [tmp_path])
    assert summary.new == 7
    assert embedder.batches == [3, 3, 1]


def test_png_with_alpha_and_grayscale_are_embedded(tmp_path: Path, settings: Settings) -> None:
    Image.new("RGBA", (64, 36), (10, 200, 30, 128)).save(tmp_path / "alpha.png")
    Image.new("L", (64, 36), 77).save(tmp_path / "gray.png")
    buf = io.BytesIO()
    Image.new("RGB", (64, 36), "blue").save(buf, "GIF")
    (tmp_path / "anim.gif").write_bytes(buf.getvalue())
    summary = add_paths(build_service(settings, embedder=TinyEmbedder()), [tmp_path])
    assert (summary.new, summary.failed) == (3, [])


@pytest.mark.usefixtures("backend")
def test_ingested_bytes_are_kept_in_the_content_addressed_cache(tmp_path: Path,
                                                                settings: Settings) -> None:
    import hashlib

    folder = tmp_path / "in"
    folder.mkdir()
    paths = [_photo(folder / f"p{i}.jpg", i) for i in range(3)]
    (folder / "broken.jpg").write_bytes(b"garbage")
    with build_service(settings, embedder=TinyEmbedder()) as service:
        add_paths(service, [folder])
        for path in paths:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            stored = service.store.get_video(meta_for_file(path).video_id)
            assert stored is not None and stored.thumbnail_sha256 == digest
            assert service.cache.get(digest) == path.read_bytes()
        cached = [p for p in settings.thumbnail_cache_dir.rglob("*") if p.is_file()]
        assert len(cached) == 3  # the broken file is not kept
