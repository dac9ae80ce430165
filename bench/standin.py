"""A harder near-duplicate set for the search options, from Debian's wallpaper packages.

The packaged photos and part of the wallpapers become label folders of YouTube-style
re-uploads (``make_neardup``); the other wallpapers are cut into many 16:9 tiles, each a
distractor of its own (tiles of one wallpaper look alike, as a channel's thumbnails do), and
into a second, disjoint batch of tiles to learn a PCA-whitening on. Sources: the wallpapers
under /usr/share/backgrounds and /usr/share/wallpapers (mate-backgrounds,
plasma-workspace-wallpapers, lomiri-wallpapers, ukui-wallpapers), one image a theme.

Run: ``python -m bench.standin OUT [--queries 30] [--tiles 2000] [--seed 0]``, then
``thumbsearch eval OUT/hard [--rerank SPEC] [--whiten-on OUT/whiten]``.
"""

from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

from PIL import Image

from search.eval.neardup import make_neardup
from search.eval.samples import sample_photos

ROOTS = (Path("/usr/share/backgrounds"), Path("/usr/share/wallpapers"))
TILE = (320, 180)
MIN_BYTES = 100_000  # leaves out icons, screenshots and flat colour fills


def wallpapers(roots: tuple[Path, ...] = ROOTS) -> list[Path]:
    """One file a wallpaper: plasma themes ship one picture at many sizes, keep the largest."""
    chosen: dict[str, Path] = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if (not path.is_file() or path.suffix.lower() not in (".jpg", ".jpeg", ".png")
                    or path.stat().st_size < MIN_BYTES or "screenshot" in path.name):
                continue
            parts = path.relative_to(root).parts
            theme = f"{root.name}/{parts[0]}" if "contents" in parts else f"{root.name}/{path}"
            best = chosen.get(theme)
            if best is None or path.stat().st_size > best.stat().st_size:
                chosen[theme] = path
    return [chosen[t] for t in sorted(chosen)]


def _tiles(sources: list[Path], count: int, rng: random.Random, out: Path,
           one_folder_each: bool) -> int:
    written = 0
    per = -(-count // max(1, len(sources)))
    for number, path in enumerate(sources):
        with Image.open(path) as opened:
            image = opened.convert("RGB")
        image.thumbnail((1600, 1600))
        for tile in range(per):
            if written == count:
                return written
            width = int(image.width * rng.uniform(0.2, 0.7))
            height = min(image.height, round(width * 9 / 16))
            width = round(height * 16 / 9)
            left = rng.randint(0, image.width - width)
            top = rng.randint(0, image.height - height)
            crop = image.crop((left, top, left + width, top + height)).resize(TILE)
            name = f"w{number:03d}-{tile:03d}"
            target = out / name / "tile.jpg" if one_folder_each else out / f"{name}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            crop.save(target, "JPEG", quality=rng.randint(60, 92))
            written += 1
    return written


def build(out: Path, queries: int = 30, tiles: int = 2000, seed: int = 0) -> dict[str, int]:
    """Write ``out/hard`` (label folders: re-uploads and one-tile distractors) and
    ``out/whiten`` (loose tiles of the distractors' wallpapers, for learning a whitening)."""
    rng = random.Random(seed)
    found = wallpapers()
    rng.shuffle(found)
    photos, others = found[:queries], found[queries:]
    for folder in ("src", "hard", "whiten"):
        shutil.rmtree(out / folder, ignore_errors=True)
    src = out / "src"
    src.mkdir(parents=True)
    for name, photo in sample_photos().items():
        photo.save(src / f"sample-{name}.png")
    for number, path in enumerate(photos):
        with Image.open(path) as opened:
            image = opened.convert("RGB")
        image.thumbnail((1920, 1920))
        image.save(src / f"wall-{number:02d}.jpg", quality=95)
    summary = make_neardup(src, out / "hard", variants=10, seed=seed)
    distractors = _tiles(others, tiles, rng, out / "hard", one_folder_each=True)
    learn = _tiles(others, tiles, random.Random(seed + 1), out / "whiten",
                   one_folder_each=False)
    return {"labels": summary.labels, "variants": summary.images,
            "distractors": distractors, "whiten": learn, "wallpapers": len(found)}


def main() -> None:
    """Build the set named on the command line and print what was written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--tiles", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(build(args.out, args.queries, args.tiles, args.seed))


if __name__ == "__main__":
    main()
