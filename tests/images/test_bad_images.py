"""Bad images: each is embedded correctly or skipped with a reason, in bounded time and memory."""

from __future__ import annotations

import io
import time
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from indexer.errors import FetchError, ImageDecodeError
from indexer.images.decode import decode_image
from indexer.images.fetch import HttpImageFetcher
from tests.fakes.corpus import FIGURES_ENV, read_figures, record_figure
from tests.fakes.embedder import TinyEmbedder
from tests.fakes.hostile import Behaviour, HostileServer


def _photo(mode: str = "RGB", size: tuple[int, int] = (64, 48)) -> Image.Image:
    rng = np.random.default_rng(0)
    base = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    return base.convert(mode) if mode != "RGB" else base


def _save(image: Image.Image, fmt: str, **kw: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **kw)
    return out.getvalue()


def _png_bomb(width: int = 100_000, height: int = 100_000) -> bytes:
    """A tiny PNG that declares huge dimensions (a decompression bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    body = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def _animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    return _save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def _exif_rotated() -> bytes:
    image = Image.new("RGB", (80, 40), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    return _save(image, "JPEG", exif=exif.tobytes())


GOOD: dict[str, Callable[[], bytes]] = {
    "cmyk-jpeg": lambda: _save(_photo("CMYK"), "JPEG"),
    "palette-png": lambda: _save(_photo("P"), "PNG"),
    "palette-png-transparent": lambda: _save(_photo("P"), "PNG", transparency=0),
    "16-bit-png": lambda: _save(Image.fromarray(
        np.arange(64 * 48, dtype=np.uint16).reshape(48, 64) * 20), "PNG"),
    "greyscale-alpha-png": lambda: _save(_photo("LA"), "PNG"),
    "rgba-webp": lambda: _save(_photo("RGBA"), "WEBP"),
    "animated-gif": lambda: _animated("GIF"),
    "animated-webp": lambda: _animated("WEBP"),
    "progressive-jpeg": lambda: _save(_photo(), "JPEG", progressive=True),
    "bmp": lambda: _save(_photo(), "BMP"),
    "tiff": lambda: _save(_photo(), "TIFF"),
    "1x1-png": lambda: _save(Image.new("RGB", (1, 1)), "PNG"),
}

BAD: dict[str, tuple[Callable[[], bytes], str]] = {
    "truncated-jpeg": (lambda: _save(_photo(), "JPEG")[:300], "corrupt"),
    "html-as-jpeg": (lambda: b"<!DOCTYPE html><html><body>502</body></html>", "HTML page"),
    "zero-bytes": (lambda: b"", "empty"),
    "png-bomb": (_png_bomb, "pixel limit|decompression bomb"),
    "text": (lambda: b"hello world" * 10, "not an image"),
    "jpeg-header-only": (lambda: b"\xff\xd8\xff\xe0" + b"\0" * 20, "not an image|corrupt"),
    "gif-bomb": (lambda: b"GIF89a\xff\xff\xff\xff" + b"\0" * 30, "image"),
}


@pytest.mark.parametrize("name", sorted(GOOD))
def test_odd_but_valid_images_are_embedded(name: str) -> None:
    image = decode_image(GOOD[name](), name)
    assert image.mode == "RGB" and image.width >= 1
    vector = TinyEmbedder().embed(TinyEmbedder().preprocess(image)[None])
    assert vector.shape == (1, 192) and np.isfinite(vector).all()


def test_exif_rotation_and_first_frame_are_honoured() -> None:
    assert decode_image(_exif_rotated()).size == (40, 80)
    first = decode_image(_animated("GIF")).getpixel((5, 5))
    assert first[0] > 200 and first[1] < 50  # red: the first frame
    sixteen = np.asarray(decode_image(GOOD["16-bit-png"]()))
    assert sixteen.std() > 5, "a 16-bit image must not come out flat"


@pytest.mark.parametrize("name", sorted(BAD))
def test_broken_images_are_skipped_with_a_reason(name: str) -> None:
    make, reason = BAD[name]
    start = time.perf_counter()
    with pytest.raises(ImageDecodeError, match=reason):
        decode_image(make(), name)
    assert time.perf_counter() - start < 2


HOSTILE_BODIES = (("/huge", "byte limit"), ("/endless", "byte limit"), ("/drip", "slow drip"))


def test_huge_bodies_and_slow_drips_are_cut_off() -> None:
    fifty_mb = 50 * 1024 * 1024

    def route(path: str) -> Behaviour:
        if path == "/huge":
            return Behaviour("ok", b"\xff\xd8" + b"\0" * fifty_mb)
        if path == "/endless":
            return Behaviour("endless")
        if path == "/drip":
            return Behaviour("drip", _save(_photo(), "JPEG"), interval=0.05, chunk=16)
        return Behaviour("ok", _save(_photo(), "JPEG"))

    with HostileServer(route) as server:
        fetcher = HttpImageFetcher([server.host], timeout=2, retries=0,
                                   max_bytes=2 * 1024 * 1024, max_seconds=1.5)
        for path, reason in HOSTILE_BODIES:
            start = time.perf_counter()
            with pytest.raises(FetchError, match=reason):
                fetcher.fetch(server.url(path))
            assert time.perf_counter() - start < 5, path
        assert decode_image(fetcher.fetch(server.url("/fine"))).size == (64, 48)


SEEDS = [_save(_photo(), "JPEG"), _save(_photo("P"), "PNG"), _animated("GIF"),
         _animated("WEBP"), _exif_rotated(), _save(_photo(), "TIFF"), _save(_photo(), "BMP")]
_EXAMPLES = 1500


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "big"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[at:at + draw(st.integers(1, 64))]
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:  # a dimension-sized field set to a huge value
            data[at:at + 4] = b"\xff\xff\x7f\xff"
    return bytes(data)


@settings(max_examples=_EXAMPLES, deadline=2000, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(_mutated())
def test_mutated_image_bytes_never_crash_or_hang(data: bytes) -> None:
    start = time.perf_counter()
    try:
        image = decode_image(data, "fuzz")
    except ImageDecodeError:
        pass
    else:
        assert image.mode == "RGB"
        TinyEmbedder().preprocess(image)
    assert time.perf_counter() - start < 2


def test_image_figures_are_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FIGURES_ENV, str(tmp_path / "figures.jsonl"))
    record_figure("bad_images", {"valid_odd": len(GOOD), "broken": len(BAD),
                                 "fuzzed_examples": _EXAMPLES,
                                 "hostile_bodies": len(HOSTILE_BODIES)})
    # What README "Reliability" quotes: 12 odd but valid kinds, and the cases behind them.
    assert read_figures(tmp_path / "figures.jsonl") == {"bad_images": {
        "valid_odd": 12, "broken": 7, "fuzzed_examples": 1500, "hostile_bodies": 3}}
