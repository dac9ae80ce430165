"""Retrieval quality of each model configuration on the near-duplicate set.

The set: every photo scikit-image and scikit-learn ship, as its mqdefault thumbnail
(the original) plus N YouTube-style re-uploads (``search.eval.samples.make_variants``: the
five thumbnail sizes with their letterbox bars, crops, flips, colour shifts, titles,
duration badges, JPEG re-encoding); one label per photo. Each configuration embeds the
whole set and is scored by ``search.eval.metrics.score_vectors`` (every image a query, exact
cosine ranking), with and without PCA-whitening learned on the set's own vectors (as
``+pcaw`` would learn it on a corpus).

Measured: EfficientNet-Lite0 with squash / crop / pad, with and without letterbox-bar
removal, avg / max / GeM pooling; EfficientNet-Lite1/2 when their weight packages are
installed; the keras.applications models only when their ImageNet weights are in Keras'
cache (they cannot be downloaded here).

Run: ``.venv/bin/python -m bench.compare_models [--variants 19] [--seed 0] [--json]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Row:
    """One configuration's scores."""

    config: str
    whitened: bool
    recall1: float
    recall5: float
    recall10: float
    mAP: float
    seconds: float


# scikit-image's other bundled images (textures, scans, drawings): easy distractors.
_DISTRACTORS = ("brick", "grass", "gravel", "moon", "page", "text", "horse", "clock", "cell",
                "immunohistochemistry", "retina", "logo", "colorwheel")


def _distractors() -> list[tuple[str, Image.Image]]:
    """Thumbnails that are no re-upload of any photo: other images and hard near-misses."""
    from skimage import data as skdata

    from search.eval import samples

    out = []
    for name in _DISTRACTORS:
        array = np.asarray(getattr(skdata, name)())
        if array.dtype == bool:
            array = array.astype(np.uint8) * 255
        if array.ndim == 2:
            array = np.stack([array] * 3, axis=-1)
        photo = Image.fromarray(np.ascontiguousarray(array[..., :3]).astype(np.uint8))
        out.append((f"other:{name}", samples.youtube_thumbnail(photo, "mqdefault")))
    # Hard ones: the motorcycle's other stereo view, and other shots of each photo's scene
    # (half-size sub-frames off its centre), like another frame of the same video.
    right = Image.fromarray(np.asarray(skdata.stereo_motorcycle()[1], dtype=np.uint8))
    out.append(("other:motorcycle-right", samples.youtube_thumbnail(right, "mqdefault")))
    for name, photo in samples.sample_photos().items():
        w, h = photo.size
        for tag, (x, y) in (("tl", (0, 0)), ("br", (w // 2, h // 2))):
            part = photo.crop((x, y, x + w // 2, y + h // 2))
            out.append((f"other:{name}-{tag}", samples.youtube_thumbnail(part, "mqdefault")))
    return out


def near_duplicate_set(variants: int, seed: int) -> tuple[list[Image.Image], list[str]]:
    """Images and labels: each photo's mqdefault thumbnail and its re-uploads, one label a
    photo, plus distractors that are alone in their label (ranked against, never queries)."""
    from search.eval import samples

    images: list[Image.Image] = []
    labels: list[str] = []
    for i, (name, photo) in enumerate(samples.sample_photos().items()):
        images.append(samples.youtube_thumbnail(photo, "mqdefault"))
        labels.append(name)
        for _, variant in samples.make_variants(photo, variants, seed=seed * 1000 + i):
            images.append(variant)
            labels.append(name)
    for label, image in _distractors():
        images.append(image)
        labels.append(label)
    return images, labels


def configurations(include_keras: bool) -> list[str]:
    """Model ids to measure: every lite0 option combination, then other models if here."""
    from indexer.models import MODEL_SPECS, weights_status

    ids = []
    for unbar, resize, pooling in itertools.product(("", "+unbar"), ("", "+crop", "+pad"),
                                                    ("", "+max", "+gem")):
        ids.append(f"efficientnet-lite0{unbar}{resize}{pooling}")
    for base in MODEL_SPECS:
        if base == "efficientnet-lite0":
            continue
        lite = base.startswith("efficientnet-lite")
        if (lite or include_keras) and weights_status(base).available:
            ids.extend([base, f"{base}+unbar"])
    return ids


def not_measured() -> list[str]:
    """Base models left out because their weights are not here, with the reason."""
    from indexer.models import MODEL_SPECS, weights_status

    out = []
    for base in MODEL_SPECS:
        status = weights_status(base)
        if not status.available:
            out.append(f"{base}: not measured ({status.source}: {status.reason})")
    return out


def embed_all(model_id: str, images: list[Image.Image], batch: int = 32) -> np.ndarray:
    """L2-normalised (n, dim) vectors of ``images`` under ``model_id``."""
    from indexer.models import load_embedder
    from indexer.vectors.index import l2_normalise

    embedder = load_embedder(model_id)
    arrays = [embedder.preprocess(image) for image in images]
    chunks = [embedder.embed(np.stack(arrays[i:i + batch]))
              for i in range(0, len(arrays), batch)]
    normalised: np.ndarray = l2_normalise(np.concatenate(chunks))
    return normalised


def measure(model_id: str, images: list[Image.Image], labels: list[str]) -> list[Row]:
    """Scores of one configuration, raw and PCA-whitened."""
    from search.eval.metrics import score_vectors
    from search.eval.whitening import PcaWhitening

    started = time.perf_counter()
    vectors = embed_all(model_id, images)
    seconds = time.perf_counter() - started
    rows = []
    for whitened in (False, True):
        scored = PcaWhitening.fit(vectors).apply(vectors) if whitened else vectors
        s = score_vectors(scored, labels, ks=(1, 5, 10))
        rows.append(Row(model_id, whitened, s.recall[1], s.recall[5], s.recall[10], s.mAP,
                        seconds))
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the comparison table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", type=int, default=19, help="re-uploads per photo")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keras", action="store_true",
                        help="also measure keras.applications models found in Keras' cache")
    parser.add_argument("--only", nargs="*", help="measure only these model ids")
    parser.add_argument("--json", action="store_true", help="print rows as JSON")
    args = parser.parse_args(argv)

    images, labels = near_duplicate_set(args.variants, args.seed)
    ids = args.only or configurations(args.keras)
    rows: list[Row] = []
    for model_id in ids:
        rows.extend(measure(model_id, images, labels))
        print(f"measured {model_id}", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps([row.__dict__ for row in rows], indent=1))
        return 0
    photos = sum(1 for label in set(labels) if not label.startswith("other:"))
    print(f"near-duplicate set: {photos} photos x (1 + {args.variants} variants) + "
          f"{len(set(labels)) - photos} distractors = {len(images)} images, seed {args.seed}")
    print(f"{'configuration':<40} {'whiten':<6} {'R@1':>6} {'R@5':>6} {'R@10':>6} "
          f"{'mAP':>6} {'embed s':>8}")
    for row in rows:
        print(f"{row.config:<40} {'pcaw' if row.whitened else '-':<6} {row.recall1:6.3f} "
              f"{row.recall5:6.3f} {row.recall10:6.3f} {row.mAP:6.3f} {row.seconds:8.1f}")
    for line in not_measured():
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
