"""Calibration photos for int8 quantisation: the photos scikit-image and scikit-learn ship,
rendered as YouTube thumbnails at every size and as edited, re-encoded re-uploads."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from indexer.errors import ModelError

__all__ = ["CALIBRATION_VERSION", "THUMBNAIL_SIZES", "calibration_batch", "calibration_images"]

#: Bumped when the calibration images change: the cached int8 files are converted again.
CALIBRATION_VERSION = 1

#: (width, height) of each thumbnail i.ytimg.com serves (search.eval.samples uses the same).
THUMBNAIL_SIZES = ((120, 90), (320, 180), (480, 360), (640, 480), (1280, 720))

_FRAME_ASPECT = 16 / 9


def _photos() -> list[Image.Image]:
    """The photos bundled in the scikit-image and scikit-learn wheels (no download)."""
    try:
        from skimage import data as skdata
        from sklearn.datasets import load_sample_image
    except ImportError as exc:
        raise ModelError(
            "the +int8 models are calibrated on the photos scikit-image and scikit-learn "
            "ship: pip install scikit-image scikit-learn") from exc
    motorcycle: Callable[[], tuple[Any, ...]] = skdata.stereo_motorcycle
    loaders: tuple[Callable[[], Any], ...] = (
        skdata.astronaut, skdata.camera, skdata.chelsea, skdata.coffee, skdata.coins,
        skdata.rocket, skdata.hubble_deep_field, lambda: motorcycle()[0],
        lambda: load_sample_image("china.jpg"), lambda: load_sample_image("flower.jpg"))
    photos = []
    for load in loaders:
        array = np.asarray(load(), dtype=np.uint8)
        if array.ndim == 2:
            array = np.stack([array] * 3, axis=-1)
        photos.append(Image.fromarray(np.ascontiguousarray(array[..., :3]), "RGB"))
    return photos


def _thumbnail(frame: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The 16:9 ``frame`` as YouTube renders thumbnail ``size``: 4:3 sizes get black bars."""
    width, height = size
    inner = ImageOps.fit(frame, (width, min(height, round(width / _FRAME_ASPECT))),
                         method=Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", size, (0, 0, 0))
    canvas.paste(inner, ((width - inner.width) // 2, (height - inner.height) // 2))
    return canvas


def _reencoded(image: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


def calibration_images() -> list[Image.Image]:
    """Every photo at each thumbnail size (JPEG at 60), plus two edited re-uploads of each
    (cropped and flipped; colour-shifted), the same list on every call."""
    rng = np.random.default_rng(CALIBRATION_VERSION)
    out: list[Image.Image] = []
    for photo in _photos():
        frame = ImageOps.fit(photo, (1280, 720), method=Image.Resampling.LANCZOS)
        out.extend(_reencoded(_thumbnail(frame, size), 60) for size in THUMBNAIL_SIZES)
        width, height = frame.size
        cut = float(rng.uniform(0.05, 0.2))
        cropped = frame.crop((int(width * cut), int(height * cut),
                              int(width * (1 - cut)), int(height * (1 - cut))))
        out.append(_reencoded(_thumbnail(ImageOps.mirror(cropped), (480, 360)),
                              int(rng.integers(25, 90))))
        shifted = ImageEnhance.Color(ImageEnhance.Brightness(frame).enhance(
            float(rng.uniform(0.8, 1.2)))).enhance(float(rng.uniform(0.7, 1.4)))
        out.append(_reencoded(_thumbnail(shifted, (320, 180)), int(rng.integers(25, 90))))
    return out


def calibration_batch(preprocess: Callable[[Image.Image], np.ndarray[Any, Any]]
                      ) -> np.ndarray[Any, np.dtype[np.float32]]:
    """The calibration images through ``preprocess`` (the model's own), as one batch."""
    return np.stack([preprocess(image) for image in calibration_images()]).astype(np.float32)
