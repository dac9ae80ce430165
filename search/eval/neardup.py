"""A near-duplicate benchmark: every photo becomes a label folder of YouTube-style re-uploads."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from indexer.bounds import quote
from indexer.errors import InputError, StoreError
from indexer.images.decode import IMAGE_SUFFIXES, read_image_file
from indexer.settings import DEFAULT_MAX_IMAGE_BYTES
from search.eval.samples import make_variants, sample_photos

__all__ = ["NeardupSummary", "make_neardup", "photo_seed"]

ORIGINAL_MAX = (1280, 720)  # the original is kept at most maxresdefault size
ORIGINAL_QUALITY = 95


@dataclass(frozen=True)
class NeardupSummary:
    """What make_neardup wrote."""

    out: Path
    labels: int
    images: int


def photo_seed(seed: int, name: str) -> int:
    """The variant seed of one photo: stable per (seed, name), independent of the other photos."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "big")


def _label(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "photo"


def _photos_in(src: Path, max_bytes: int) -> dict[str, Image.Image]:
    if not src.is_dir():
        raise InputError(f"{src}: not a folder of photos")
    paths = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise InputError(f"{src}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    photos: dict[str, Image.Image] = {}
    for path in paths:
        label = _label(str(path.relative_to(src).with_suffix("")).replace("/", "_"))
        if label in photos:
            raise InputError(f"{path}: two photos map to the label {quote(label)}; rename one")
        photos[label] = read_image_file(path, max_bytes)
    return photos


def make_neardup(src: Path | None, out: Path, variants: int = 8, seed: int = 0,
                 max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> NeardupSummary:
    """Write ``out/<photo>/original.jpg`` and n variants per photo of ``src`` (None: samples)."""
    if variants < 1:
        raise InputError(f"--variants must be at least 1, got {variants}")
    photos = sample_photos() if src is None else _photos_in(src, max_bytes)
    images = 0
    try:
        for name, photo in photos.items():
            folder = out / name
            folder.mkdir(parents=True, exist_ok=True)
            for stale in folder.glob("*.jpg"):
                stale.unlink()  # a rerun with fewer variants leaves no leftovers
            original = ImageOps.contain(photo.convert("RGB"), ORIGINAL_MAX,
                                        method=Image.Resampling.LANCZOS)
            original.save(folder / "original.jpg", "JPEG", quality=ORIGINAL_QUALITY)
            for number, (what, image) in enumerate(
                    make_variants(photo, variants, photo_seed(seed, name)), start=1):
                image.save(folder / f"{number:02d}-{what}.jpg", "JPEG", quality=ORIGINAL_QUALITY)
            images += variants + 1
    except OSError as exc:
        raise StoreError(f"cannot write the benchmark under {out}: {exc.strerror or exc}"
                         ) from exc
    return NeardupSummary(out=out, labels=len(photos), images=images)
