"""Retrieval quality and cost of model options (+flip, +rmac, +gem, the larger Lites) on
``make eval``'s two sets and a harder near-duplicate stand-in, all on the LiteRT runtime.

The stand-in set: the photos scikit-image and scikit-learn ship plus the first
``--photos`` wallpapers under ``/usr/share/backgrounds`` (Debian's ``gnome-backgrounds``,
``mate-backgrounds``, ``ukui-wallpapers``, ``lomiri-wallpapers*`` packages), each
as its mqdefault thumbnail and re-uploads (``make_variants``, plus a mirror image, a 70%
crop, a rotation by 4 degrees, a picture-in-picture on another photo, JPEG quality 12 and
the tiny 120x90 default with a badge); the remaining wallpapers, cut into many tiles (crops
of 30-60% of the frame), are the distractors: other frames of the same kind of picture.

Per model: recall@1/5/10 and mAP per set (exact cosine, ``score_vectors``), recall@1 per
variant kind on the stand-in, vector size, the ``.tflite`` size and the peak memory of a
process that loads the model from the cache and embeds a batch, and the embedding rate
(images per second at ingest's batch of 32; rounds interleave the models, so a
neighbour's load hits them alike; noisy on a shared machine: compare ratios).

Run: ``python -m bench.model_options --eval-dir build/eval [--models ID ...] [--json]``
(``make eval`` writes ``build/eval``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

DEFAULT = "efficientnet-lite0+unbar"
MODELS = (
    DEFAULT,
    "efficientnet-lite0+unbar+flip",
    "efficientnet-lite0+unbar+rmac",
    "efficientnet-lite0+unbar+rmac+gem",
    "efficientnet-lite0+unbar+gem",
    "efficientnet-lite1+unbar",
    "efficientnet-lite2+unbar",
)
BACKGROUNDS = Path("/usr/share/backgrounds")
INGEST_BATCH = 32


def _backgrounds() -> list[Image.Image]:
    paths = sorted(p for p in BACKGROUNDS.rglob("*")
                   if p.suffix.lower() in (".jpg", ".jpeg", ".png") and p.is_file())
    out = []
    for path in paths:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
        if min(rgb.size) >= 360:
            rgb.thumbnail((1920, 1080))
            out.append(rgb)
    return out


def _hard_variants(photo: Image.Image, other: Image.Image, rng: np.random.Generator
                   ) -> list[tuple[str, Image.Image]]:
    from search.eval import samples

    frame = ImageOps.fit(photo, (1280, 720), method=Image.Resampling.LANCZOS)
    out = [("mirror", samples.jpeg_reencode(
        samples.youtube_thumbnail(ImageOps.mirror(frame), "mqdefault"), 70))]
    out.append(("crop70", samples.jpeg_reencode(samples.youtube_thumbnail(
        samples.crop(frame, 0.3, (float(rng.uniform(0.4, 0.6)), 0.5)), "hqdefault"), 60)))
    rotated = frame.rotate(4, resample=Image.Resampling.BILINEAR, expand=False)
    out.append(("rotate4", samples.jpeg_reencode(samples.crop(rotated, 0.1), 60)
                .resize((320, 180), Image.Resampling.LANCZOS)))
    canvas = ImageOps.fit(other, (320, 180), method=Image.Resampling.LANCZOS)
    canvas.paste(frame.resize((176, 99), Image.Resampling.LANCZOS), (120, 60))
    out.append(("pip", samples.jpeg_reencode(canvas, 70)))
    out.append(("jpeg12", samples.jpeg_reencode(samples.youtube_thumbnail(frame, "mqdefault"),
                                                12)))
    tiny = samples.draw_duration_badge(samples.youtube_thumbnail(frame, "default"))
    out.append(("tiny", samples.jpeg_reencode(tiny, 50)))
    return out


def standin_set(photos: int = 25, variants: int = 8, tiles: int = 30, seed: int = 0
                ) -> tuple[list[Image.Image], list[str], list[str]]:
    """(images, labels, variant kinds) of the stand-in set (kind "original" or "tile")."""
    from search.eval import samples

    rng = np.random.default_rng(seed)
    walls = _backgrounds()
    if len(walls) < photos + 2:
        raise SystemExit(f"{BACKGROUNDS} holds {len(walls)} wallpapers, {photos + 2} needed: "
                         "apt-get install gnome-backgrounds mate-backgrounds ukui-wallpapers")
    queried = list(samples.sample_photos().values()) + walls[:photos]
    images: list[Image.Image] = []
    labels: list[str] = []
    kinds: list[str] = []
    for i, photo in enumerate(queried):
        images.append(samples.youtube_thumbnail(photo, "mqdefault"))
        labels.append(f"p{i}")
        kinds.append("original")
        edits = [(name.split("+", 1)[1] if "+" in name else name, image)
                 for name, image in samples.make_variants(photo, variants, seed=seed + i)]
        other = queried[(i + 7) % len(queried)]
        for kind, image in [*(("variant", image) for _, image in edits),
                            *_hard_variants(photo, other, rng)]:
            images.append(image)
            labels.append(f"p{i}")
            kinds.append(kind)
    for j, wall in enumerate(walls[photos:]):
        width, height = wall.size
        for t in range(tiles):
            side = float(rng.uniform(0.3, 0.6))
            w, h = int(width * side), int(width * side * 9 / 16)
            h = min(h, height)
            x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            tile = wall.crop((x, y, x + w, y + h))
            name = ("mqdefault", "hqdefault", "default")[t % 3]
            images.append(samples.jpeg_reencode(samples.youtube_thumbnail(tile, name), 60))
            labels.append(f"tile{j}-{t}")
            kinds.append("tile")
    return images, labels, kinds


def folder_set(path: Path) -> tuple[list[Image.Image], list[str]]:
    """A labelled folder (one subfolder per label) as images and labels."""
    images, labels = [], []
    for file in sorted(path.glob("*/*")):
        if file.suffix.lower() in (".jpg", ".jpeg", ".png"):
            with Image.open(file) as image:
                images.append(image.copy())
            labels.append(file.parent.name)
    return images, labels


def _vectors(embedder: Any, images: list[Image.Image]) -> np.ndarray:
    from indexer.vectors.index import l2_normalise

    batch = np.stack([embedder.preprocess(image) for image in images])
    chunks = [embedder.embed(batch[i:i + INGEST_BATCH])
              for i in range(0, len(batch), INGEST_BATCH)]
    out: np.ndarray = l2_normalise(np.concatenate(chunks))
    return out


def _recall1_by_kind(vectors: np.ndarray, labels: list[str], kinds: list[str]
                     ) -> dict[str, float]:
    sims = vectors @ vectors.T
    np.fill_diagonal(sims, -np.inf)
    top = sims.argmax(axis=1)
    counts = Counter(labels)
    hits: dict[str, list[bool]] = {}
    for i, kind in enumerate(kinds):
        if counts[labels[i]] > 1:
            hits.setdefault(kind, []).append(labels[int(top[i])] == labels[i])
    return {kind: round(float(np.mean(v)), 3) for kind, v in sorted(hits.items())}


_MEMORY = """
import sys, numpy as np
from pathlib import Path
from indexer.models import load_embedder
def status(key):  # kB; a fresh process image has its own high-water mark, fork's does not
    line = next(l for l in open("/proc/self/status") if l.startswith(key + ":"))
    return int(line.split()[1])
before = status("VmRSS")
e = load_embedder(sys.argv[1], runtime="litert", cache_dir=Path(sys.argv[2]))
e.embed(np.zeros((32, *e.input_size, 3), np.float32))
print(before, status("VmHWM"), "tensorflow" in sys.modules)
"""


def _memory(model_id: str, cache: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", _MEMORY, model_id, str(cache)],
                          capture_output=True, text=True, check=True)
    before, peak, tf = done.stdout.split()
    tflite = sorted(cache.glob(f"{model_id}-*.tflite"))
    # Peak RSS grown by loading the model (the interpreter included) and one batch of 32.
    return {"load_embed_rss_mib": round((int(peak) - int(before)) / 1024, 1),
            "peak_rss_mib": round(int(peak) / 1024, 1),
            "tflite_mib": round(tflite[0].stat().st_size / 2**20, 1) if tflite else None,
            "imported_tensorflow": tf == "True"}


def _rates(embedders: dict[str, Any], images: list[Image.Image], rounds: int
           ) -> dict[str, float]:
    batches = {mid: np.stack([e.preprocess(im) for im in images])
               for mid, e in embedders.items()}
    seconds = dict.fromkeys(embedders, 0.0)
    for _ in range(rounds):
        for mid, embedder in embedders.items():
            batch = batches[mid]
            started = time.perf_counter()
            for i in range(0, len(batch), INGEST_BATCH):
                embedder.embed(batch[i:i + INGEST_BATCH])
            seconds[mid] += time.perf_counter() - started
    return {mid: round(rounds * len(images) / s, 1) for mid, s in seconds.items()}


def main(argv: list[str] | None = None) -> int:
    """Print one JSON object: the figures of each model id."""
    from indexer.models import load_embedder
    from search.eval.metrics import score_vectors

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--eval-dir", type=Path, default=Path("build/eval"),
                        help="where make eval wrote neardup-samples and tuxpaint-classes")
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--photos", type=int, default=25, help="wallpapers used as queries")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the rate measure")
    parser.add_argument("--cache", type=Path, help="LiteRT model cache (default: a temp dir)")
    args = parser.parse_args(argv)

    images, labels, kinds = standin_set(args.photos)
    sets: dict[str, tuple[list[Image.Image], list[str]]] = {"standin": (images, labels)}
    for name in ("neardup-samples", "tuxpaint-classes"):
        if (args.eval_dir / name).is_dir():
            sets[name] = folder_set(args.eval_dir / name)
    counts = Counter(labels)
    print(f"stand-in: {len(images)} images, {sum(c > 1 for c in counts.values())} labels, "
          f"{sum(c == 1 for c in counts.values())} distractors", file=sys.stderr)
    cache = args.cache or Path(tempfile.mkdtemp(prefix="model-options-"))
    results: dict[str, dict[str, Any]] = {}
    embedders = {}
    for model_id in args.models:
        embedder = load_embedder(model_id, runtime="litert", cache_dir=cache)
        embedders[model_id] = embedder
        row: dict[str, Any] = {"dim": embedder.dim, "input": list(embedder.input_size)}
        for name, (set_images, set_labels) in sets.items():
            vectors = _vectors(embedder, set_images)
            s = score_vectors(vectors, set_labels, ks=(1, 5, 10))
            row[name] = {"r1": round(s.recall[1], 3), "r5": round(s.recall[5], 3),
                         "r10": round(s.recall[10], 3), "mAP": round(s.mAP, 3)}
            if name == "standin":
                row["standin_r1_by_kind"] = _recall1_by_kind(vectors, set_labels, kinds)
        row.update(_memory(embedder.model_id, cache))
        results[embedder.model_id] = row
        print(f"measured {model_id}", file=sys.stderr, flush=True)
    rates = _rates(embedders, images[:64], args.rounds)
    for model_id, rate in rates.items():
        results[model_id]["img_s"] = rate
        results[model_id]["rate_vs_default"] = (round(rate / rates[DEFAULT], 2)
                                                if DEFAULT in rates else None)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
