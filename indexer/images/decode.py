"""Decoding image bytes and files into RGB Pillow images, with bounded memory."""

from __future__ import annotations

import io
import threading
import warnings
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from indexer.bounds import read_regular_file
from indexer.errors import ImageDecodeError, ImagePathError, InputFileError
from indexer.settings import DEFAULT_MAX_IMAGE_BYTES

__all__ = ["DRAFT_MARGIN", "IMAGE_SUFFIXES", "MAX_PIXELS", "decode_image", "read_image_bytes",
           "read_image_file"]

# A thumbnail is at most 1280x720; 40 Mpx leaves room for photos and stops decompression bombs.
MAX_PIXELS = 40_000_000
_WARNINGS_LOCK = threading.Lock()
#: A JPEG decodes reduced only to at least this many times the model's input side.
DRAFT_MARGIN = 1.5
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff"})


def decode_image(data: bytes, name: str = "image",
                 reduce_to: tuple[int, int] | None = None) -> Image.Image:
    """Decode bytes to an RGB image (EXIF rotation applied, first frame of animations).

    With ``reduce_to`` (height, width), a JPEG at least three times that size on both
    sides is scaled down by 1/2, 1/4 or 1/8 while it decodes, never below 1.5 times that
    size: several times cheaper than decoding every pixel, and the resize to the model's
    input follows anyway. Closer to the model's size, the DCT scaling blurs more than
    the resize would (a 640x480 thumbnail halved for 224 px moved embeddings to a cosine
    of 0.976; 1280x720 halved stays above 0.999), so those decode in full.
    """
    if not data:
        raise ImageDecodeError(f"{name}: empty body, not an image")
    try:
        # catch_warnings swaps process-wide state, so decodes that use it take turns; a
        # thumbnail decodes in about a millisecond, far below the model's time per image.
        with _WARNINGS_LOCK, warnings.catch_warnings():
            # Pillow warns (UserWarning) about corrupt EXIF or TIFF tags and goes on: the
            # image then decodes or raises; a warning must not reach the user or abort it.
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data))
            width, height = opened.size
            if width * height > MAX_PIXELS:
                raise ImageDecodeError(f"{name}: {width}x{height} pixels is over the "
                                       f"{MAX_PIXELS} pixel limit")
            if reduce_to is not None and opened.format == "JPEG":
                # Square on the longer side, so an EXIF rotation cannot leave a side short.
                side = int(max(reduce_to) * DRAFT_MARGIN)
                opened.draft(None, (side, side))
            opened.load()
            ImageOps.exif_transpose(opened, in_place=True)  # no copy when nothing turns
            return opened if opened.mode == "RGB" else opened.convert("RGB")
    except ImageDecodeError:
        raise
    except UnidentifiedImageError as exc:
        head = data[:64].lstrip().lower()
        kind = "an HTML page" if head.startswith((b"<!doctype html", b"<html")) else "not an image"
        raise ImageDecodeError(f"{name}: {kind} ({len(data)} bytes)") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"{name}: too many pixels (decompression bomb)") from exc
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImageDecodeError(f"{name}: corrupt image ({exc})") from exc


def read_image_bytes(path: Path, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> bytes:
    """The bytes of a regular image file of at most ``max_bytes``; ImagePathError otherwise.

    The limit holds while reading: a device, a FIFO or a file that grows is never read
    past it.
    """
    if not path.exists():
        raise ImagePathError(f"{path}: no such file")
    if path.is_dir():
        raise ImagePathError(f"{path}: is a directory, not an image file")
    try:
        return read_regular_file(path, max_bytes, "image", "THUMBSEARCH_MAX_IMAGE_BYTES")
    except InputFileError as exc:
        raise ImagePathError(str(exc)) from None
    except OSError as exc:
        raise ImagePathError(f"{path}: cannot read ({exc.strerror})") from exc


def read_image_file(path: Path, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> Image.Image:
    """Read and decode an image file."""
    return decode_image(read_image_bytes(path, max_bytes), str(path))
