"""Retrieval on real photos: a YouTube-style variant finds its original as top-1."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from indexer.ingest.local import add_paths
from indexer.service import build_service
from indexer.settings import Settings
from search.eval import samples
from search.neighbours import similar_to_image

pytestmark = pytest.mark.slow


def _save(image: Image.Image, path: Path, quality: int = 90) -> Path:
    image.save(path, "JPEG", quality=quality)
    return path


def _reencoded(image: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


@pytest.fixture
def corpus(tmp_path: Path, settings: Settings) -> dict[str, str]:
    """The mqdefault thumbnail of every sample photo, ingested; photo name -> video id."""
    folder = tmp_path / "originals"
    folder.mkdir()
    ids: dict[str, str] = {}
    for name, photo in samples.sample_photos().items():
        video_id = samples.video_id_for(f"retrieval:{name}")
        _save(samples.youtube_thumbnail(photo, "mqdefault"), folder / f"{name} [{video_id}].jpg")
        ids[name] = video_id
    summary = add_paths(build_service(settings), [folder])
    assert summary.new == len(ids) and not summary.failed
    return ids


@pytest.mark.parametrize("size", ["default", "hqdefault", "sddefault", "maxresdefault"])
def test_letterboxed_and_reencoded_variant_finds_its_original(
        corpus: dict[str, str], settings: Settings, tmp_path: Path, size: str) -> None:
    service = build_service(settings)
    for name, photo in samples.sample_photos().items():
        variant = _reencoded(samples.youtube_thumbnail(photo, size), quality=40)
        path = _save(variant, tmp_path / f"{name}-{size}.jpg")
        top = similar_to_image(service, str(path), k=1).results[0]
        assert top.video_id == corpus[name], f"{name} as {size} found {top.title}"


def test_edited_variants_mostly_find_their_original(corpus: dict[str, str], settings: Settings,
                                                   tmp_path: Path) -> None:
    service = build_service(settings)
    hits = total = 0
    misses = []
    for name, photo in samples.sample_photos().items():
        for label, variant in samples.make_variants(photo, 3, seed=7):
            path = _save(variant, tmp_path / f"{name}-{label}.jpg")
            top = similar_to_image(service, str(path), k=1).results[0]
            total += 1
            if top.video_id == corpus[name]:
                hits += 1
            else:
                misses.append(f"{name}/{label}")
    # Crops, flips, colour shifts, titles and badges together: at least 90% top-1.
    assert hits / total >= 0.9, f"{hits}/{total}; missed {misses}"
