"""A class-level set of real photos from Debian's ``tuxpaint-stamps-default`` package.
``python -m search.eval.sets OUT [--stamps DIR]`` writes it."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from indexer.errors import InputError, StoreError, ThumbsearchError

__all__ = ["STAMP_CLASSES", "TUXPAINT_STAMPS", "StampSet", "main", "write_stamp_set"]

TUXPAINT_STAMPS = Path("/usr/share/tuxpaint/stamps")

#: label -> stamp folders (relative to the stamps root); a trailing "/**" takes subfolders too.
STAMP_CLASSES: dict[str, tuple[str, ...]] = {
    "birds": ("animals/birds",),
    "fish": ("animals/fish",),
    "insects": ("animals/insects",),
    "mammals": ("animals/mammals/**",),
    "fruit": ("food/fruit",),
    "vegetables": ("food/vegetables",),
    "nuts": ("food/nuts",),
    "flowers": ("plants/flowers",),
    "trees": ("plants/trees",),
    "mushrooms": ("plants/mushrooms",),
    "planets": ("space/planets",),
    "tools": ("household/tools",),
    "balls": ("sports",),
    "cars": ("vehicles/auto",),
}
MAX_SIDE = 480
BACKGROUND = (255, 255, 255)


@dataclass(frozen=True)
class StampSet:
    """What write_stamp_set wrote."""

    out: Path
    labels: int
    images: int


def _stamp_files(root: Path, pattern: str) -> list[Path]:
    recursive = pattern.endswith("/**")
    folder = root / pattern.removesuffix("/**")
    found = folder.rglob("*.png") if recursive else folder.glob("*.png")
    return sorted(p for p in found if "cartoon" not in p.relative_to(root).parts)


def write_stamp_set(out: Path, stamps: Path = TUXPAINT_STAMPS) -> StampSet:
    """Write ``out/<class>/<stamp>.jpg`` for every class in STAMP_CLASSES."""
    if not stamps.is_dir():
        raise InputError(f"{stamps}: no Tux Paint stamps here; install them with "
                         "`apt-get install tuxpaint-stamps-default` or pass --stamps DIR")
    images = labels = 0
    try:
        for label, patterns in STAMP_CLASSES.items():
            files = [p for pattern in patterns for p in _stamp_files(stamps, pattern)]
            if len(files) < 2:
                continue
            folder = out / label
            folder.mkdir(parents=True, exist_ok=True)
            for path in files:
                with Image.open(path) as opened:
                    rgba = opened.convert("RGBA")
                flat = Image.new("RGBA", rgba.size, (*BACKGROUND, 255))
                flat.alpha_composite(rgba)
                image = ImageOps.contain(flat.convert("RGB"), (MAX_SIDE, MAX_SIDE),
                                         method=Image.Resampling.LANCZOS)
                name = "_".join(path.relative_to(stamps).with_suffix("").parts[-2:])
                image.save(folder / f"{name}.jpg", "JPEG", quality=92)
                images += 1
            labels += 1
    except OSError as exc:
        raise StoreError(f"cannot build the stamp set in {out}: {exc}") from exc
    if not images:
        raise InputError(f"{stamps}: none of the expected stamp folders has images")
    return StampSet(out=out, labels=labels, images=images)


def main(argv: Sequence[str] | None = None) -> int:
    """Write the class-level stamp set given on the command line."""
    parser = argparse.ArgumentParser(prog="python -m search.eval.sets",
                                     description="Write Tux Paint's photo stamps as a "
                                                 "labelled set (one folder per class).")
    parser.add_argument("out_dir", type=Path, help="folder to write")
    parser.add_argument("--stamps", type=Path, default=TUXPAINT_STAMPS,
                        help=f"Tux Paint stamps folder (default {TUXPAINT_STAMPS})")
    args = parser.parse_args(argv)
    try:
        written = write_stamp_set(args.out_dir, args.stamps)
    except ThumbsearchError as exc:
        print(f"error: {exc}")
        return exc.exit_code
    print(f"wrote {written.images} images in {written.labels} classes to {written.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
