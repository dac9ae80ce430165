"""Cheaper decoding and bar detection give the model the same input (or the same ranks)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from indexer.errors import ImageDecodeError
from indexer.images.decode import decode_image
from indexer.models.preprocess import (
    BAR_MAX_FRACTION,
    Preprocessing,
    find_content_box,
    prepare_rgb,
)
from search.eval import samples

SIZE = (224, 224)


def _jpeg(image: Image.Image, quality: int = 90) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def _maxres() -> dict[str, bytes]:
    """Every sample photo as a 1280x720 YouTube maxres thumbnail (real photos)."""
    return {name: _jpeg(samples.youtube_thumbnail(photo, "maxresdefault"))
            for name, photo in samples.sample_photos().items()}


def test_large_jpeg_decodes_reduced_but_never_below_the_model_size() -> None:
    data = _maxres()["chelsea"]
    full = decode_image(data, "full")
    reduced = decode_image(data, "reduced", reduce_to=SIZE)
    assert full.size == (1280, 720)
    assert reduced.size == (640, 360)  # 1/2: a further halving would go below 224 high
    assert reduced.mode == "RGB"


@pytest.mark.parametrize("name", ["default", "mqdefault", "hqdefault", "sddefault"])
def test_thumbnails_under_three_times_the_model_size_decode_exactly_as_before(
        name: str) -> None:
    # sddefault (640x480) halved would be 320x240, too close to 224: its embeddings moved.
    data = _jpeg(samples.youtube_thumbnail(samples.sample_photos()["coffee"], name))
    full = np.asarray(decode_image(data))
    assert np.array_equal(np.asarray(decode_image(data, reduce_to=SIZE)), full)


def test_a_corrupt_or_truncated_jpeg_is_one_clear_failure_when_reduced() -> None:
    data = _maxres()["chelsea"]
    for broken in (data[: len(data) // 2], data[:600] + b"\x00" * 4000 + data[4600:]):
        with pytest.raises(ImageDecodeError, match="corrupt image"):
            decode_image(broken, "thumb.jpg", reduce_to=SIZE)


def test_other_formats_are_not_reduced() -> None:
    photo = samples.youtube_thumbnail(samples.sample_photos()["rocket"], "maxresdefault")
    out = io.BytesIO()
    photo.save(out, "PNG")
    assert decode_image(out.getvalue(), reduce_to=SIZE).size == (1280, 720)


@pytest.mark.parametrize("preprocessing", [Preprocessing(), Preprocessing(unbar=True),
                                           Preprocessing(resize="crop")])
def test_reduced_decode_gives_nearly_the_same_model_input(preprocessing: Preprocessing) -> None:
    for name, data in _maxres().items():
        full = prepare_rgb(decode_image(data), SIZE, preprocessing)
        reduced = prepare_rgb(decode_image(data, reduce_to=SIZE), SIZE, preprocessing)
        assert reduced.shape == full.shape == (*SIZE, 3), name
        difference = np.abs(full - reduced)
        # 0..255 scale: JPEG's own re-encoding at quality 90 moves pixels by more than this.
        assert difference.mean() < 2.5, name
        assert np.percentile(difference, 99) < 25, name


def _reference_box(image: Image.Image) -> tuple[int, int, int, int]:
    """find_content_box written plainly: every line's mean and 98th percentile."""
    width, height = image.size
    luma = np.asarray(image.convert("RGB").convert("L"), dtype=np.float32)
    box = [0, 0, width, height]
    for axis, size in ((1, height), (0, width)):
        mean, peak = luma.mean(axis=axis), np.percentile(luma, 98, axis=axis)
        limit = int(size * BAR_MAX_FRACTION)

        def run(m: np.ndarray, p: np.ndarray, limit: int = limit) -> int:
            dark = (m[:limit] <= 20.0) & (p[:limit] <= 40.0)
            if dark.all():
                return 0
            length = int(np.argmin(dark))
            return length if length >= 2 else 0

        cut = min(run(mean, peak), run(mean[::-1], peak[::-1]))
        if cut and axis == 1:
            box[1], box[3] = cut, height - cut
        elif cut:
            box[0], box[2] = cut, width - cut
    left, top, right, bottom = box
    return left, top, right, bottom


def _barred(rng: np.random.Generator) -> Image.Image:
    height, width = (int(v) for v in rng.integers(3, 160, 2))
    pixels = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
    top, side = int(rng.integers(0, height // 2 + 1)), int(rng.integers(0, width // 2 + 1))
    pixels[:top] = rng.integers(0, 30, pixels[:top].shape)
    pixels[height - top:] = rng.integers(0, 45, pixels[height - top:].shape)
    pixels[:, :side] = rng.integers(0, 25, pixels[:, :side].shape)
    pixels[:, width - side:] = 0
    if rng.random() < 0.3:
        pixels = np.minimum(pixels, 30)  # a dark picture, not a letterbox
    return Image.fromarray(pixels)


def test_bar_detection_matches_the_plain_definition() -> None:
    rng = np.random.default_rng(7)
    images = [_barred(rng) for _ in range(300)]
    for photo in samples.sample_photos().values():
        for name in samples.THUMBNAIL_SIZES:
            images.append(samples.youtube_thumbnail(photo, name))
    boxes = [find_content_box(image) for image in images]
    assert boxes == [_reference_box(image) for image in images]
    assert sum(box != (0, 0, *image.size) for box, image in zip(boxes, images, strict=True)) > 100


@pytest.mark.slow
def test_reduced_decode_keeps_embeddings_and_ranks() -> None:
    from indexer.models import load_embedder
    from indexer.vectors.index import l2_normalise

    embedder = load_embedder("efficientnet-lite0+unbar")
    photos = samples.sample_photos()
    stored = l2_normalise(embedder.embed(np.stack([
        embedder.preprocess(decode_image(_jpeg(samples.youtube_thumbnail(p, "mqdefault"))))
        for p in photos.values()])))

    def both(data: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
        full = l2_normalise(embedder.embed(np.stack(
            [embedder.preprocess(decode_image(d)) for d in data])))
        reduced = l2_normalise(embedder.embed(np.stack(
            [embedder.preprocess(decode_image(d, reduce_to=embedder.input_size))
             for d in data])))
        return full, reduced

    # Every photo and three variants of it, at every thumbnail size: cosine above 0.99.
    pictures = [picture for photo in photos.values()
                for picture in [photo, *(v for _, v in samples.make_variants(photo, 3, seed=1))]]
    for name in samples.THUMBNAIL_SIZES:
        full, reduced = both([_jpeg(samples.youtube_thumbnail(p, name)) for p in pictures])
        assert np.min(np.sum(full * reduced, axis=1)) > 0.99, name
    queries = list(_maxres().values())
    full, reduced = both(queries)
    ranks_full = np.argsort(-(full @ stored.T), axis=1)
    ranks_reduced = np.argsort(-(reduced @ stored.T), axis=1)
    # Past the second rank the photos are unrelated and their scores nearly tie.
    assert np.array_equal(ranks_full[:, :2], ranks_reduced[:, :2])
    assert list(ranks_reduced[:, 0]) == list(range(len(photos)))  # each finds its original
