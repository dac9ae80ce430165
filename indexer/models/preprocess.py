"""Preprocessing before a model sees an image: letterbox-bar removal, picture-in-picture
surround removal and resizing to the model's input. Pure functions on Pillow images."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from indexer.errors import ImageDecodeError
from indexer.models.inset import remove_surround

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "BAR_MAX_FRACTION",
    "RESIZE_MODES",
    "Preprocessing",
    "find_content_box",
    "prepare_rgb",
    "remove_letterbox",
    "resize_image",
]

FloatArray = np.ndarray[Any, np.dtype[np.float32]]

#: How each image is brought to the model's (height, width): ignoring aspect (squash),
#: cutting the centre to the input's aspect (crop), or fitting it whole with black bars (pad).
RESIZE_MODES = ("squash", "crop", "pad")

#: A bar never takes more than this fraction of the height (or width) on one side;
#: 4:3 around 16:9 is 12.5% each side, so 30% leaves room without eating dark content.
BAR_MAX_FRACTION = 0.3

# A row (column) is part of a bar when its mean luminance is at most _BAR_MEAN and 98% of
# its pixels are at most _BAR_PEAK: JPEG ringing near the frame's edge stays below these,
# while dark content (a night sky with stars, a title band with text) does not.
_BAR_MEAN = 20.0
_BAR_PEAK = 40.0
# Bars shorter than this many pixels are not worth cutting (and may be a dark border).
_MIN_BAR = 2


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes model input: bar removal, surround removal, then a resize mode."""

    unbar: bool = False
    resize: str = "squash"
    inset: bool = False

    def __post_init__(self) -> None:
        """Refuse an unknown resize mode."""
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"unknown resize mode {self.resize!r}; known: {RESIZE_MODES}")


def _rgb(image: Image.Image) -> Image.Image:
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")  # PIL warns when a transparent palette goes to RGB
    return image if image.mode == "RGB" else image.convert("RGB")


def _bar_length(profile_mean: np.ndarray, profile_peak: np.ndarray, limit: int) -> int:
    """Number of leading lines that look like a bar (at most ``limit``)."""
    dark = (profile_mean[:limit] <= _BAR_MEAN) & (profile_peak[:limit] <= _BAR_PEAK)
    if dark.all():
        return 0  # dark past any plausible bar: a dark picture, not a letterbox
    length = int(np.argmin(dark))
    return length if length >= _MIN_BAR else 0


def _edge_bar(lines: np.ndarray, limit: int) -> int:
    """``_bar_length`` of ``lines`` ((n, length) luma, edge first), peaks only where needed.

    The 98th percentile is the costly part; a line whose mean is already too bright ends
    the bar whatever its peak, so only the lines before the first bright mean need one.
    """
    mean = lines[:limit].mean(axis=1)
    bright = mean > _BAR_MEAN
    candidates = int(np.argmax(bright)) if bright.any() else len(mean)
    peak = np.full(len(mean), np.inf, dtype=np.float64)
    if candidates:
        # From the first bright mean on, a line is no bar whatever its peak (left at inf).
        peak[:candidates] = np.percentile(lines[:candidates], 98, axis=1)
    return _bar_length(mean, peak, limit)


def find_content_box(image: Image.Image) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the picture inside letterbox bars (the whole image if none).

    Bars are cut only in symmetric pairs (top with bottom, left with right), by the shorter
    of the two, because YouTube centres the frame: a dark sky at the top alone is content.

    YouTube renders the 4:3 thumbnails (default, hqdefault, sddefault) of a 16:9 video with
    black bars above and below the frame; a 4:3 video's 16:9 thumbnail (mqdefault) has bars
    left and right. A bar is a run of near-black, near-uniform rows (or columns) at an edge.
    """
    width, height = image.size
    luma = np.asarray(_rgb(image).convert("L"))  # uint8: means and percentiles as in floats
    box = [0, 0, width, height]
    for axis, size in ((1, height), (0, width)):
        # axis=1 averages along rows: one value per row (top/bottom bars).
        lines = luma if axis == 1 else luma.T
        limit = int(size * BAR_MAX_FRACTION)
        first = _edge_bar(lines, limit)
        last = _edge_bar(lines[::-1], limit)
        cut = min(first, last)
        if cut:
            if axis == 1:
                box[1], box[3] = cut, height - cut
            else:
                box[0], box[2] = cut, width - cut
    left, top, right, bottom = box
    return left, top, right, bottom


def remove_letterbox(image: Image.Image) -> Image.Image:
    """The image with symmetric near-black bars at its edges cut away (RGB)."""
    rgb = _rgb(image)
    box = find_content_box(rgb)
    return rgb if box == (0, 0, *rgb.size) else rgb.crop(box)


def resize_image(image: Image.Image, size: tuple[int, int], mode: str = "squash") -> Image.Image:
    """RGB image of (height, width) ``size`` by ``mode`` (one of RESIZE_MODES), bilinear."""
    from PIL import Image, ImageOps

    height, width = size
    rgb = _rgb(image)
    if mode == "squash":
        return rgb if rgb.size == (width, height) else rgb.resize(
            (width, height), Image.Resampling.BILINEAR)
    if mode == "crop":
        return ImageOps.fit(rgb, (width, height), method=Image.Resampling.BILINEAR)
    if mode == "pad":
        return ImageOps.pad(rgb, (width, height), method=Image.Resampling.BILINEAR,
                            color=(0, 0, 0))
    raise ValueError(f"unknown resize mode {mode!r}; known: {RESIZE_MODES}")


def prepare_rgb(image: Image.Image, size: tuple[int, int],
                preprocessing: Preprocessing = Preprocessing()) -> FloatArray:
    """Any image -> (height, width, 3) float32 RGB 0..255 after bar and surround removal and
    resizing."""
    try:
        if preprocessing.unbar:
            image = remove_letterbox(image)
        if preprocessing.inset:
            image = remove_surround(image)
        resized = resize_image(image, size, preprocessing.resize)
        return np.asarray(resized, dtype=np.float32)
    except (OSError, ValueError) as exc:  # PIL decodes lazily, so a truncated file fails here
        raise ImageDecodeError(f"cannot decode image: {exc}") from exc
