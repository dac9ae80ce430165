"""Picture-in-picture: the picture is cut back out of solid, gradient and blurred surrounds,
while ordinary, letterboxed and sky- or wall-topped photos stay whole; the +inset option."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from indexer.models import model_spec, parse_model_id
from indexer.models.inset import find_inset_box, remove_surround
from indexer.models.preprocess import Preprocessing, find_content_box, prepare_rgb
from search.eval import samples
from search.eval.edits import backdrop

SIZE = (320, 180)
# (scale, x, y) of the pasted picture: anywhere, a corner of the frame included.
PLACES = ((0.5, 40, 30), (0.45, 176, 99), (0.55, 100, 20), (0.4, 10, 90), (0.35, 60, 12))


def _surround(kind: str, photo: Image.Image, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    if kind == "solid":
        return Image.new("RGB", SIZE, tuple(int(c) for c in rng.integers(0, 256, 3)))
    if kind == "gradient":
        top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        ramp = np.linspace(0.0, 1.0, SIZE[1], dtype=np.float32)[:, None, None]
        pixels = np.broadcast_to(top * (1 - ramp) + bottom * ramp, (SIZE[1], SIZE[0], 3))
        return Image.fromarray(pixels.astype(np.uint8), "RGB")
    if kind == "blurred-copy":  # the frame itself, blurred, behind its smaller copy
        return photo.filter(ImageFilter.GaussianBlur(12))
    while True:  # the hard set's backdrop; we want the blurred noise, not its gradient
        canvas = backdrop(SIZE, rng)
        if np.asarray(canvas)[0].std(axis=0).max() > 1:
            return canvas


def _pip(photo: Image.Image, kind: str, place: tuple[float, int, int],
         seed: int) -> tuple[Image.Image, tuple[int, int, int, int]]:
    frame = samples.youtube_thumbnail(photo)
    scale, x, y = place
    small = frame.resize((round(SIZE[0] * scale), round(SIZE[1] * scale)),
                         Image.Resampling.LANCZOS)
    canvas = _surround(kind, frame, seed)
    canvas.paste(small, (x, y))
    return samples.jpeg_reencode(canvas, 90), (x, y, x + small.width, y + small.height)


def _inside(box: tuple[int, int, int, int], truth: tuple[int, int, int, int]) -> bool:
    """True when ``box`` keeps all of ``truth`` but a few pixels at its sides."""
    return (box[0] <= truth[0] + 3 and box[1] <= truth[1] + 3 and box[2] >= truth[2] - 3
            and box[3] >= truth[3] - 3)


@pytest.mark.parametrize("kind", ["solid", "gradient", "blurred-noise"])
def test_the_picture_is_cut_out_of_its_surround(kind: str) -> None:
    close = []
    for seed, (name, photo) in enumerate(samples.sample_photos().items()):
        if name == "hubble_deep_field":
            continue  # black with stars: its sides are invisible on a dark surround
        for place in PLACES:
            image, truth = _pip(photo, kind, place, seed)
            box = find_inset_box(image)
            # A side whose colours match the surround's may be missed: then the box keeps
            # some surround (or the whole image), but never cuts into the picture.
            assert _inside(box, truth), (name, place, box, truth)
            close.append(max(abs(a - b) for a, b in zip(box, truth, strict=True)) <= 3)
            assert remove_surround(image).size == (box[2] - box[0], box[3] - box[1])
    assert sum(close) >= len(close) - 1, close


def test_a_blurred_copy_of_the_frame_as_surround() -> None:
    close = 0
    for seed, photo in enumerate(samples.sample_photos().values()):
        for place in PLACES:
            image, truth = _pip(photo, "blurred-copy", place, seed)
            box = find_inset_box(image)
            assert _inside(box, truth), (place, box, truth)
            close += max(abs(a - b) for a, b in zip(box, truth, strict=True)) <= 3
    assert close >= 40  # of 50: the copy's colours may match the picture's sides


def test_a_large_picture_in_picture_is_found_on_a_reduced_copy() -> None:
    image, truth = _pip(samples.sample_photos()["coffee"], "solid", PLACES[0], 1)
    large = image.resize((1280, 720), Image.Resampling.LANCZOS)
    box = find_inset_box(large)
    assert max(abs(a - 4 * b) for a, b in zip(box, truth, strict=True)) <= 8, box


@pytest.mark.parametrize("name", ["default", "mqdefault", "hqdefault", "sddefault",
                                  "maxresdefault"])
def test_ordinary_and_letterboxed_thumbnails_stay_whole(name: str) -> None:
    for photo_name, photo in samples.sample_photos().items():
        thumb = samples.jpeg_reencode(samples.youtube_thumbnail(photo, name), 60)
        assert find_inset_box(thumb) == (0, 0, *thumb.size), photo_name
        # With +unbar first, the frame inside the bars stays whole too.
        frame = thumb.crop(find_content_box(thumb))
        assert find_inset_box(frame) == (0, 0, *frame.size), photo_name


def test_a_sky_or_a_plain_wall_is_not_a_surround() -> None:
    for photo_name, photo in samples.sample_photos().items():
        frame = np.array(samples.youtube_thumbnail(photo))
        sky = frame.copy()
        ramp = np.linspace(0.0, 1.0, 70, dtype=np.float32)[:, None, None]
        sky[:70] = (np.array([60, 110, 220]) * (1 - ramp) + np.array([190, 215, 240]) * ramp)
        wall = frame.copy()
        wall[:, 220:] = (200, 190, 170)
        both_sides = frame.copy()
        both_sides[:, :60] = both_sides[:, 260:] = (90, 90, 90)
        for image in (sky, wall, both_sides):
            edited = samples.jpeg_reencode(Image.fromarray(image), 90)
            assert find_inset_box(edited) == (0, 0, *SIZE), photo_name


def test_a_cut_out_object_on_a_plain_backdrop_stays_whole() -> None:
    canvas = Image.new("RGB", SIZE, (250, 250, 250))
    disc = Image.new("L", (120, 120))
    from PIL import ImageDraw

    ImageDraw.Draw(disc).ellipse((0, 0, 119, 119), fill=255)
    photo = samples.youtube_thumbnail(samples.sample_photos()["chelsea"]).crop((100, 30, 220,
                                                                                  150))
    canvas.paste(photo, (100, 30), disc)
    assert find_inset_box(samples.jpeg_reencode(canvas, 90)) == (0, 0, *SIZE)


def test_inset_is_a_model_option() -> None:
    config = parse_model_id("efficientnet-lite0+inset+unbar+int8")
    assert config.model_id == "efficientnet-lite0+unbar+inset+int8"
    assert config.fp32.model_id == "efficientnet-lite0+unbar+inset"
    assert config.preprocessing == Preprocessing(unbar=True, inset=True)
    assert parse_model_id("efficientnet-lite0+inset").model_id == "efficientnet-lite0+inset"
    assert "picture-in-picture" in model_spec("efficientnet-lite0+inset").description
    image, _ = _pip(samples.sample_photos()["rocket"], "gradient", PLACES[0], 0)
    plain = prepare_rgb(image, (224, 224), Preprocessing(unbar=True))
    cut = prepare_rgb(image, (224, 224), Preprocessing(unbar=True, inset=True))
    left_top = np.asarray(image)[5, 5].astype(np.float32)
    assert np.abs(plain[0, 0] - left_top).max() < 10  # the surround, then the picture
    assert np.abs(cut[0, 0] - left_top).max() > 10
