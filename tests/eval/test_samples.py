"""Tests of search.eval.samples: sizes, letterbox bars, variants, ids and the yt-dlp folder."""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from indexer.errors import InputError
from search.eval import samples

ID_ALPHABET = set(string.ascii_letters + string.digits + "-_")
FOUR_THREE = ("default", "hqdefault", "sddefault")
SIXTEEN_NINE = ("mqdefault", "maxresdefault")


@pytest.fixture(scope="module")
def photos() -> dict[str, Image.Image]:
    return samples.sample_photos()


def _pixels(img: Image.Image) -> bytes:
    """The decoded pixels with mode and size: equal exactly when the images are."""
    return f"{img.mode}{img.size}".encode() + img.tobytes()


def _dark_rows(img: Image.Image, threshold: float = 16.0) -> tuple[int, int]:
    """How many near-black rows run in from the top and from the bottom."""
    rows = np.asarray(img.convert("L"), dtype=np.float64).mean(axis=1)
    dark = rows < threshold
    top = int(np.argmin(dark)) if not dark.all() else len(dark)
    bottom = int(np.argmin(dark[::-1])) if not dark.all() else len(dark)
    return top, bottom


def test_sample_photos_are_real_rgb_photos(photos: dict[str, Image.Image]) -> None:
    assert len(photos) >= 8
    assert {"astronaut", "chelsea", "coffee", "china", "flower", "camera"} <= set(photos)
    for name, img in photos.items():
        assert img.mode == "RGB", name
        assert min(img.size) >= 200, name
        # A photo has many distinct colours, unlike a drawing or a test pattern.
        assert np.asarray(img).reshape(-1, 3).std(axis=0).mean() > 20, name


def test_sample_photos_are_fresh_copies() -> None:
    first = samples.sample_photos()["coffee"]
    first.paste((255, 0, 0), (0, 0, first.width, first.height))
    assert samples.sample_photos()["coffee"].getpixel((0, 0)) != (255, 0, 0)


@pytest.mark.parametrize("name", list(samples.THUMBNAIL_SIZES))
def test_thumbnail_sizes(photos: dict[str, Image.Image], name: str) -> None:
    thumb = samples.youtube_thumbnail(photos["rocket"], name)
    assert thumb.size == samples.THUMBNAIL_SIZES[name]
    assert thumb.mode == "RGB"


def test_thumbnail_size_table_matches_youtube() -> None:
    assert samples.THUMBNAIL_SIZES == {
        "default": (120, 90),
        "mqdefault": (320, 180),
        "hqdefault": (480, 360),
        "sddefault": (640, 480),
        "maxresdefault": (1280, 720),
    }


@pytest.mark.parametrize("name", FOUR_THREE)
def test_four_three_names_are_letterboxed(photos: dict[str, Image.Image], name: str) -> None:
    width, height = samples.THUMBNAIL_SIZES[name]
    frame_height = round(width * 9 / 16)
    expected_bar = (height - frame_height) // 2
    for photo in ("chelsea", "flower", "astronaut"):
        top, bottom = _dark_rows(samples.youtube_thumbnail(photos[photo], name))
        # The bar is exact; the photo's own darkest edge rows may add one or two.
        assert expected_bar <= top <= expected_bar + 2, (photo, top)
        assert expected_bar <= bottom <= expected_bar + 2, (photo, bottom)
        assert expected_bar >= 10


@pytest.mark.parametrize("name", SIXTEEN_NINE)
def test_sixteen_nine_names_have_no_bars(photos: dict[str, Image.Image], name: str) -> None:
    for photo in ("chelsea", "flower", "astronaut"):
        assert _dark_rows(samples.youtube_thumbnail(photos[photo], name)) == (0, 0)


def test_thumbnail_cover_crops_at_the_centre() -> None:
    # A tall image: left half red, right half blue, a green band in the middle third.
    array = np.zeros((900, 400, 3), dtype=np.uint8)
    array[:, :200] = (255, 0, 0)
    array[:, 200:] = (0, 0, 255)
    array[300:600] = (0, 255, 0)
    thumb = np.asarray(samples.youtube_thumbnail(Image.fromarray(array), "mqdefault"))
    # The 16:9 crop of a 400x900 image is 400x225 around the centre: all green.
    assert thumb[..., 1].min() > 200
    assert thumb[..., 0].max() < 60


def test_unknown_thumbnail_name_is_an_input_error(photos: dict[str, Image.Image]) -> None:
    with pytest.raises(InputError, match="hq720"):
        samples.youtube_thumbnail(photos["coffee"], "hq720")


def test_letterbox_pads_a_wide_frame(photos: dict[str, Image.Image]) -> None:
    frame = samples.youtube_thumbnail(photos["coffee"], "maxresdefault")
    boxed = samples.letterbox(frame, "sddefault")
    assert boxed.size == (640, 480)
    assert _dark_rows(boxed)[0] >= 60


def test_crop_keeps_the_size_and_changes_the_content(photos: dict[str, Image.Image]) -> None:
    thumb = samples.youtube_thumbnail(photos["coffee"], "mqdefault")
    cropped = samples.crop(thumb, 0.2, center=(0.3, 0.6))
    assert cropped.size == thumb.size
    assert _pixels(cropped) != _pixels(thumb)
    assert _pixels(samples.crop(thumb, 0.0)) == _pixels(thumb)
    with pytest.raises(InputError):
        samples.crop(thumb, 1.0)


def test_jpeg_reencode_is_lossy_and_bounded(photos: dict[str, Image.Image]) -> None:
    thumb = samples.youtube_thumbnail(photos["china"], "mqdefault")
    low = np.asarray(samples.jpeg_reencode(thumb, 10), dtype=np.int16)
    high = np.asarray(samples.jpeg_reencode(thumb, 95), dtype=np.int16)
    original = np.asarray(thumb, dtype=np.int16)
    assert np.abs(low - original).mean() > np.abs(high - original).mean()
    with pytest.raises(InputError):
        samples.jpeg_reencode(thumb, 0)


def test_draw_title_darkens_the_top_band_only(photos: dict[str, Image.Image]) -> None:
    thumb = samples.youtube_thumbnail(photos["flower"], "mqdefault")
    titled = samples.draw_title(thumb, "TOP 10 FLOWERS")
    before, after = np.asarray(thumb, np.float64), np.asarray(titled, np.float64)
    assert titled.size == thumb.size
    assert np.array_equal(before[60:], after[60:])
    band = after[:30]
    # White text on a darkened band: some pixels near white, the band darker overall.
    assert band.max() > 240
    assert np.median(band) < np.median(before[:30])


def test_duration_badge_is_bottom_right(photos: dict[str, Image.Image]) -> None:
    thumb = samples.youtube_thumbnail(photos["flower"], "mqdefault")
    badged = np.asarray(samples.draw_duration_badge(thumb, "12:34"), np.int16)
    changed = np.abs(badged - np.asarray(thumb, np.int16)).sum(axis=2) > 0
    rows, cols = np.nonzero(changed)
    assert rows.min() > 180 * 0.7
    assert cols.min() > 320 * 0.6
    assert np.asarray(thumb)[: 180 // 2].tobytes() == badged[: 180 // 2].astype(np.uint8).tobytes()


def test_color_shift_and_hflip(photos: dict[str, Image.Image]) -> None:
    thumb = samples.youtube_thumbnail(photos["astronaut"], "mqdefault")
    assert _pixels(samples.color_shift(thumb)) == _pixels(thumb)
    brighter = samples.color_shift(thumb, brightness=1.3)
    assert np.asarray(brighter).mean() > np.asarray(thumb).mean()
    grey = np.asarray(samples.color_shift(thumb, saturation=0.0), np.int16)
    assert np.abs(grey[..., 0] - grey[..., 2]).max() <= 2
    hue = samples.color_shift(thumb, hue_degrees=120)
    assert np.abs(np.asarray(hue, np.int16) - np.asarray(thumb, np.int16)).mean() > 20
    flipped = samples.hflip(thumb)
    assert np.array_equal(np.asarray(flipped)[:, ::-1], np.asarray(thumb))


def test_variants_are_deterministic_for_a_seed(photos: dict[str, Image.Image]) -> None:
    first = samples.make_variants(photos["chelsea"], 6, seed=7)
    second = samples.make_variants(photos["chelsea"], 6, seed=7)
    assert [name for name, _ in first] == [name for name, _ in second]
    assert [_pixels(img) for _, img in first] == [_pixels(img) for _, img in second]


def test_variants_differ_across_seeds(photos: dict[str, Image.Image]) -> None:
    first = samples.make_variants(photos["chelsea"], 6, seed=1)
    second = samples.make_variants(photos["chelsea"], 6, seed=2)
    assert [_pixels(img) for _, img in first] != [_pixels(img) for _, img in second]


def test_variant_names_describe_their_operations(photos: dict[str, Image.Image]) -> None:
    variants = samples.make_variants(photos["coins"], 24, seed=3)
    assert len(variants) == 24
    pattern = re.compile(
        r"(default|mqdefault|hqdefault|sddefault|maxresdefault)"
        r"(\+crop\d+)?(\+hflip)?(\+color)?(\+title)?(\+badge)?\+jpeg\d+"
    )
    ops: set[str] = set()
    for name, img in variants:
        assert pattern.fullmatch(name), name
        size_name = name.split("+", 1)[0]
        assert img.size == samples.THUMBNAIL_SIZES[size_name], name
        ops.update(part.rstrip("0123456789") for part in name.split("+")[1:])
    assert ops == {"crop", "hflip", "color", "title", "badge", "jpeg"}


def test_variants_of_four_three_sizes_keep_their_bars(photos: dict[str, Image.Image]) -> None:
    for name, img in samples.make_variants(photos["flower"], 16, seed=5):
        size_name = name.split("+", 1)[0]
        # The bottom bar: a drawn title may darken the top rows of the frame.
        _, bottom = _dark_rows(img, threshold=24.0)
        if size_name in ("hqdefault", "sddefault"):
            assert bottom >= 40, name
        elif size_name == "mqdefault":
            assert bottom == 0, name


def test_video_ids_look_like_youtube_ids() -> None:
    ids = [samples.video_id_for(f"video {n}") for n in range(5000)]
    assert len(set(ids)) == len(ids)
    for video_id in ids:
        assert len(video_id) == 11
        assert set(video_id) <= ID_ALPHABET
        # 64 bits in 11 base64 characters leave 4 bits for the last one.
        assert video_id[-1] in "AEIMQUYcgkosw048"
    assert samples.video_id_for("video 1") == ids[1]
    assert any(video_id.startswith("-") for video_id in ids)
    assert any(video_id.startswith("_") for video_id in ids)


def test_ytdlp_folder_matches_its_info_json(tmp_path: Path) -> None:
    videos = samples.write_ytdlp_folder(tmp_path, variants_per_photo=2, seed=0)
    photo_count = len(samples.sample_photos())
    assert len(videos) == 3 * photo_count
    assert len(list(tmp_path.glob("*.jpg"))) == len(videos)
    assert len(list(tmp_path.glob("*.info.json"))) == len(videos)
    assert len({video.video_id for video in videos}) == len(videos)

    for video in videos:
        assert video.path.name == f"{video.title} [{video.video_id}].jpg"
        info = json.loads(video.info_path.read_text("utf-8"))
        assert info["id"] == video.video_id
        assert info["title"] == video.title
        assert info["channel_id"] == video.channel_id
        assert info["channel"] == info["uploader"] == video.channel_title
        assert re.fullmatch(r"20\d{6}", info["upload_date"])
        assert isinstance(info["timestamp"], int)
        assert isinstance(info["duration"], int)
        assert info["webpage_url"] == f"https://www.youtube.com/watch?v={video.video_id}"
        assert info["thumbnail"].startswith(f"https://i.ytimg.com/vi/{video.video_id}/")
        with Image.open(video.path) as img:
            assert img.format == "JPEG"
            if video.variant == "original":
                assert img.size == samples.THUMBNAIL_SIZES["mqdefault"]

    by_photo: dict[str, list[samples.SampleVideo]] = {}
    for video in videos:
        by_photo.setdefault(video.photo, []).append(video)
    for photo, group in by_photo.items():
        originals = [video for video in group if video.variant == "original"]
        assert len(originals) == 1, photo
        reuploads = [video for video in group if video.variant != "original"]
        assert len(reuploads) == 2, photo
        assert all(video.channel_id != originals[0].channel_id for video in reuploads), photo


def test_ytdlp_folder_is_deterministic(tmp_path: Path) -> None:
    first = samples.write_ytdlp_folder(tmp_path / "a", variants_per_photo=1, seed=4)
    second = samples.write_ytdlp_folder(tmp_path / "b", variants_per_photo=1, seed=4)
    assert [v.path.name for v in first] == [v.path.name for v in second]
    for a, b in zip(first, second, strict=True):
        assert a.path.read_bytes() == b.path.read_bytes()
        assert a.info_path.read_bytes() == b.info_path.read_bytes()
    other = samples.write_ytdlp_folder(tmp_path / "c", variants_per_photo=1, seed=5)
    assert {v.video_id for v in other}.isdisjoint({v.video_id for v in first})


def test_main_writes_the_folder_and_prints_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert samples.main([str(tmp_path / "out"), "--variants", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    count = len(samples.sample_photos())
    assert f"{2 * count} files" in lines[0]
    assert str(tmp_path / "out") in lines[0]
    assert len(list((tmp_path / "out").glob("*.jpg"))) == count
