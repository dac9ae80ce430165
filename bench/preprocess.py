"""Time the box finders of +unbar and +inset per thumbnail, in one run (prints the figures).

``python -m bench.preprocess [FOLDER] [--n 200]``: the sample photos as thumbnails of every
size and as picture-in-picture re-uploads, or ``n`` images taken evenly from FOLDER.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from indexer.images.decode import IMAGE_SUFFIXES, read_image_file
from indexer.models.inset import find_inset_box
from indexer.models.preprocess import find_content_box
from search.eval import samples
from search.eval.edits import picture_in_picture

__all__ = ["main"]


def _sample_thumbnails(n: int) -> list[Image.Image]:
    """The sample photos at every thumbnail size and on new backgrounds, ``n`` in all."""
    rng = np.random.default_rng(0)
    pool: list[Image.Image] = []
    while len(pool) < n:
        for photo in samples.sample_photos().values():
            for name in samples.THUMBNAIL_SIZES:
                pool.append(samples.jpeg_reencode(samples.youtube_thumbnail(photo, name), 90))
            pool.append(samples.jpeg_reencode(
                picture_in_picture(samples.youtube_thumbnail(photo), rng), 90))
    return pool[:n]


def _folder_thumbnails(folder: Path, n: int) -> list[Image.Image]:
    """``n`` images taken evenly from the files under ``folder``."""
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    step = max(1, len(paths) // n)
    return [read_image_file(path) for path in paths[::step][:n]]


def _find_all(find: Callable[[Image.Image], tuple[int, int, int, int]],
              images: list[Image.Image]) -> None:
    for image in images:
        find(image)


def main() -> None:
    """Print microseconds a thumbnail for each box finder and how many images each cuts."""
    parser = argparse.ArgumentParser(prog="python -m bench.preprocess")
    parser.add_argument("folder", nargs="?", type=Path)
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    images = (_folder_thumbnails(args.folder, args.n) if args.folder
              else _sample_thumbnails(args.n))
    sizes = sorted({image.size for image in images})
    print(f"{len(images)} thumbnails, sizes {', '.join(f'{w}x{h}' for w, h in sizes)}")
    per_image = {}
    for name, find in (("unbar (find_content_box)", find_content_box),
                       ("inset (find_inset_box)", find_inset_box)):
        boxes = [find(image) for image in images]
        seconds = min(timeit.repeat(partial(_find_all, find, images), number=1, repeat=5))
        cut = sum(box != (0, 0, *image.size) for box, image in zip(boxes, images, strict=True))
        per_image[name] = seconds / len(images) * 1e6
        print(f"{name}: {per_image[name]:.0f} us a thumbnail, cuts {cut} of {len(images)}")
    unbar, inset = per_image.values()
    print(f"inset / unbar: {inset / unbar:.2f}")


if __name__ == "__main__":
    main()
