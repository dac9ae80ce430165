"""The hard near-duplicate set: real photos, many named re-upload kinds each, 2,000 distractors.
``python -m search.eval.hardset OUT`` writes it from Debian's wallpaper and game packages."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from indexer.errors import InputError, StoreError, ThumbsearchError
from indexer.images.decode import IMAGE_SUFFIXES
from search.eval.data import KINDS_FILE
from search.eval.edits import BOX_SIZES, EDITS, backdrop, boxed
from search.eval.neardup import photo_seed
from search.eval.samples import jpeg_reencode, sample_photos, youtube_thumbnail
from search.eval.sets import STAMP_CLASSES, TUXPAINT_STAMPS

__all__ = [
    "DEBIAN_PACKAGES",
    "DEBIAN_PHOTOS",
    "DISTRACTOR_SIZE",
    "HardSet",
    "build_hardset",
    "kinds_of",
    "main",
]

#: The photographs among the images of these Debian packages, chosen by eye (abstract,
#: gradient, painted and rendered wallpapers left out), one file per photo.
DEBIAN_PHOTOS: dict[str, tuple[str, ...]] = {
    "mate-backgrounds": tuple(f"/usr/share/backgrounds/mate/nature/{name}.jpg" for name in (
        "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird",
        "RainDrops", "Storm", "TwoWings", "Wood", "YellowFlower")),
    "plasma-workspace-wallpapers": (
        *(f"/usr/share/wallpapers/{name}/contents/images/1920x1200.jpg" for name in (
            "BytheWater", "ColdRipple", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey",
            "Kite", "OneStandsOut", "Path", "summer_1am")),
        "/usr/share/wallpapers/ColorfulCups/contents/images/2560x1600.jpg",
        "/usr/share/wallpapers/Volna/contents/images/5120x2880.jpg"),
    "lomiri-wallpapers": tuple(f"/usr/share/backgrounds/{name}.jpg" for name in (
        "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Infinite-Sea_by_Aury88",
        "Kleiber_by_Lukas_Baubkus", "Picture_0B_by_freespace", "Picture_1A_by_freespace",
        "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi", "free_by_Peter_Nerlich",
        "friends_by_Aitzol_Berasategi", "greentock_by_Peter_Nerlich",
        "life_by_Aitzol_Berasategi", "picosdeeuropa_by_Aitzol_Berasategi",
        "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi")),
    "palapeli-data": tuple(f"/usr/share/palapeli/collection/{name}.jpg" for name in (
        "castle-maintenon", "cincinnati-bridge", "citrus-fruits", "european-honey-bee",
        "panther-chameleon-female")),
}
DEBIAN_PACKAGES = tuple(DEBIAN_PHOTOS)

ORIGINAL_MAX = BOX_SIZES["maxres"]
VARIANT_SIZE = BOX_SIZES["mq"]  # edits act on the mqdefault rendering of the photo
DISTRACTOR_SIZE = BOX_SIZES["mq"]
SINGLES_PER_PHOTO = 6
QUALITY = 90
_MAX_SOURCE_BYTES = 64 * 1024 * 1024  # the largest packaged wallpaper is 9 MB
_TILE_SCALES = (0.3, 0.45, 0.6)  # tile height as a share of the photo's height


@dataclass(frozen=True)
class HardSet:
    """What build_hardset wrote."""

    out: Path
    photos: int
    variants: int
    distractors: int
    kinds: tuple[str, ...]


def kinds_of(seed_index: int, rng: np.random.Generator) -> list[str]:
    """The single edits and combinations one photo gets: SINGLES_PER_PHOTO edits taken in
    turn from EDITS (so a few photos already cover them all), a pair and a triple."""
    names = list(EDITS)
    start = seed_index * SINGLES_PER_PHOTO
    singles = [names[(start + j) % len(names)] for j in range(SINGLES_PER_PHOTO)]
    pair = sorted(rng.choice(len(names), 2, replace=False).tolist())
    triple = sorted(rng.choice(len(names), 3, replace=False).tolist())
    return [*singles, "+".join(names[i] for i in pair), "+".join(names[i] for i in triple)]


def _name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text).strip("_") or "photo"


def _open(path: Path) -> Image.Image:
    try:
        if path.stat().st_size > _MAX_SOURCE_BYTES:
            raise InputError(f"{path}: larger than {_MAX_SOURCE_BYTES // 2**20} MB")
        with Image.open(path) as opened:
            opened.draft("RGB", (ORIGINAL_MAX[0] * 2, ORIGINAL_MAX[1] * 2))
            return ImageOps.exif_transpose(opened).convert("RGB")
    except (OSError, Image.DecompressionBombError) as exc:
        raise InputError(f"{path}: cannot read the photo ({exc})") from exc


def _pool(sources: Sequence[Path] | None, with_samples: bool) -> dict[str, Path | Image.Image]:
    """Photos by name, in a fixed order: the Debian list (or the given folders), then the
    photos scikit-image and scikit-learn ship."""
    pool: dict[str, Path | Image.Image] = {}
    if sources is None:
        for package, paths in DEBIAN_PHOTOS.items():
            for path in map(Path, paths):
                # Plasma names the photo by its folder (.../<name>/contents/images/WxH.jpg).
                stem = path.parents[2].name if path.parent.name == "images" else path.stem
                if path.is_file():
                    pool[f"{package.split('-')[0]}_{_name(stem)}"] = path
    else:
        for folder in sources:
            if not folder.is_dir():
                raise InputError(f"{folder}: not a folder of photos")
            for path in sorted(p for p in folder.rglob("*")
                               if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES):
                pool[_name(f"{folder.name}_{path.relative_to(folder).with_suffix('')}")] = path
    if with_samples:
        pool.update((f"sample_{name}", photo) for name, photo in sample_photos().items())
    return pool


def _bounded(photo: Path | Image.Image) -> Image.Image:
    image = _open(photo) if isinstance(photo, Path) else photo.convert("RGB")
    return ImageOps.contain(image, ORIGINAL_MAX, method=Image.Resampling.LANCZOS) \
        if image.width > ORIGINAL_MAX[0] or image.height > ORIGINAL_MAX[1] else image


def _variants(original: Image.Image, index: int, seed: int,
              name: str) -> Iterator[tuple[str, Image.Image]]:
    """(kind, image) of every re-upload of one photo."""
    rng = np.random.default_rng(photo_seed(seed, name))
    for size_name, size in BOX_SIZES.items():
        box = boxed(original, size)
        if box is not None:
            yield f"{box[0]}-{size_name}", box[1]
    yield "tiny", youtube_thumbnail(original, "default")
    frame = youtube_thumbnail(original, "mqdefault")
    assert frame.size == VARIANT_SIZE
    for kind in kinds_of(index, rng):
        image = frame
        for part in kind.split("+"):
            image = EDITS[part](image, rng)
        yield (f"combo{kind.count('+') + 1}_{kind}" if "+" in kind else kind), image


def _stamps(stamps: Path | None) -> list[Path]:
    """The photo stamps of the class-level set's folders (the others hold drawings too)."""
    if stamps is None or not stamps.is_dir():
        return []
    found: set[Path] = set()
    for patterns in STAMP_CLASSES.values():
        for pattern in patterns:
            folder = stamps / pattern.removesuffix("/**")
            found.update(folder.rglob("*.png") if pattern.endswith("/**") else folder.glob("*.png"))
    return sorted(p for p in found if "cartoon" not in p.relative_to(stamps).parts)


def _stamp_on_backdrop(path: Path, rng: np.random.Generator) -> Image.Image:
    """A Tux Paint photo stamp (an object cut out of a photo) on a new backdrop."""
    with Image.open(path) as opened:
        rgba = opened.convert("RGBA")
    width, height = DISTRACTOR_SIZE
    backdrop_image = backdrop(DISTRACTOR_SIZE, rng)
    scale = rng.uniform(0.5, 0.95)
    rgba = ImageOps.contain(rgba, (round(width * scale), round(height * scale)),
                            method=Image.Resampling.LANCZOS)
    x = int(rng.integers(0, width - rgba.width + 1))
    y = int(rng.integers(0, height - rgba.height + 1))
    canvas = backdrop_image.convert("RGBA")
    canvas.alpha_composite(rgba, (x, y))
    return canvas.convert("RGB")


def _tile(photo: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A 16:9 region of the photo at one of a few scales and a random position."""
    height = max(8, round(photo.height * _TILE_SCALES[int(rng.integers(len(_TILE_SCALES)))]))
    width = min(photo.width, round(height * DISTRACTOR_SIZE[0] / DISTRACTOR_SIZE[1]))
    height = min(height, round(width * DISTRACTOR_SIZE[1] / DISTRACTOR_SIZE[0]))
    left = int(rng.integers(0, photo.width - width + 1))
    top = int(rng.integers(0, photo.height - height + 1))
    return photo.resize(DISTRACTOR_SIZE, Image.Resampling.LANCZOS,
                        box=(left, top, left + width, top + height))


def _distractors(count: int, others: dict[str, Image.Image], stamps: list[Path],
                 seed: int) -> Iterator[tuple[str, Image.Image]]:
    """(source, image) of ``count`` distractors: half of them stamps on a backdrop (when
    there are stamps), the rest tiles of the photos that are not queries, taken in turn."""
    rng = np.random.default_rng(photo_seed(seed, "distractors"))
    if not others and not stamps and count:
        raise InputError(f"{count} distractors need photos that are not queries or Tux Paint "
                         "stamps; lower --photos, add --sources or give --stamps")
    from_stamps = (count // 2 if others else count) if stamps else 0
    order = rng.permutation(len(stamps)).tolist() if stamps else []
    for number in range(from_stamps):  # each stamp again on another backdrop when needed
        path = stamps[order[number % len(order)]]
        yield f"stamp:{path.relative_to(path.parents[1])}", _stamp_on_backdrop(path, rng)
    names = sorted(others)
    for number in range(count - from_stamps):
        name = names[number % len(names)]
        yield f"tile:{name}", _tile(others[name], rng)


def build_hardset(out: Path, sources: Sequence[Path] | None = None, photos: int = 50,
                  distractors: int = 2000, seed: int = 0, stamps: Path | None = TUXPAINT_STAMPS,
                  with_samples: bool = True) -> HardSet:
    """Write ``out/<photo>/original.jpg`` and its re-uploads (``<kind>.jpg``), the
    distractors (``out/distractor-NNNN/<n>.jpg``), ``kinds.txt`` and ``hardset.json``.

    Photos come from DEBIAN_PHOTOS (or ``sources``), then the packaged sample photos; the
    first ``photos`` are queries and the rest only ever feed distractors.
    """
    if photos < 1 or distractors < 0:
        raise InputError(f"--photos must be at least 1 and --distractors at least 0, got "
                         f"{photos} and {distractors}")
    pool = _pool(sources, with_samples)
    if len(pool) < photos:
        hint = ("install them: apt-get install " + " ".join(DEBIAN_PACKAGES)
                if sources is None else "add --sources")
        raise InputError(f"{photos} photos wanted, {len(pool)} found; {hint}")
    names = list(pool)
    queries, rest = names[:photos], names[photos:]
    kinds: set[str] = set()
    photo_sources: dict[str, str] = {}
    distractor_sources: dict[str, str] = {}
    variants = 0
    try:
        out.mkdir(parents=True, exist_ok=True)
        for index, name in enumerate(queries):
            original = _bounded(pool[name])
            folder = out / name
            folder.mkdir(exist_ok=True)
            for stale in folder.glob("*.jpg"):
                stale.unlink()
            original.save(folder / "original.jpg", "JPEG", quality=95)
            for kind, image in _variants(original, index, seed, name):
                # YouTube re-encodes every upload; the heavy kinds already went lower.
                jpeg_reencode(image, QUALITY).save(folder / f"{kind}.jpg", "JPEG", quality=95)
                kinds.add(kind.split("_", 1)[0])
                variants += 1
            source = pool[name]
            photo_sources[name] = str(source) if isinstance(source, Path) \
                else "scikit-image/scikit-learn sample"
        others = {name: _bounded(pool[name]) for name in rest}
        width = len(str(max(distractors, 1)))
        for number, (source_name, image) in enumerate(
                _distractors(distractors, others, _stamps(stamps), seed), start=1):
            label = f"distractor-{number:0{width}d}"
            folder = out / label
            folder.mkdir(exist_ok=True)
            image.save(folder / "distractor.jpg", "JPEG", quality=QUALITY)
            distractor_sources[label] = source_name
        ordered = sorted(kinds)
        (out / KINDS_FILE).write_text("\n".join(["original", *ordered]) + "\n", "utf-8")
        (out / "hardset.json").write_text(json.dumps(
            {"seed": seed, "photos": photo_sources, "distractors": distractor_sources},
            indent=1) + "\n", "utf-8")
    except OSError as exc:
        raise StoreError(f"cannot write the hard set under {out}: {exc.strerror or exc}"
                         ) from exc
    return HardSet(out=out, photos=len(queries), variants=variants, distractors=distractors,
                   kinds=tuple(ordered))


def main(argv: Sequence[str] | None = None) -> int:
    """Write the hard set given on the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m search.eval.hardset",
        description="Write the hard near-duplicate set: photos from Debian packages "
                    f"({', '.join(DEBIAN_PACKAGES)}), each with named re-upload kinds, "
                    "among distractors.")
    parser.add_argument("out_dir", type=Path, help="folder to write")
    parser.add_argument("--sources", type=Path, nargs="+", metavar="DIR",
                        help="folders of photos to use instead of the Debian packages' photos")
    parser.add_argument("--photos", type=int, default=50, help="query photos (default 50)")
    parser.add_argument("--distractors", type=int, default=2000,
                        help="distractor images (default 2000)")
    parser.add_argument("--stamps", type=Path, default=TUXPAINT_STAMPS,
                        help=f"Tux Paint stamps for distractors (default {TUXPAINT_STAMPS})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    args = parser.parse_args(argv)
    try:
        built = build_hardset(args.out_dir, args.sources, args.photos, args.distractors,
                              args.seed, args.stamps)
    except ThumbsearchError as exc:
        print(f"error: {exc}")
        return exc.exit_code
    print(f"wrote {built.photos} photos with {built.variants} re-uploads "
          f"({len(built.kinds)} kinds) and {built.distractors} distractors to {built.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
