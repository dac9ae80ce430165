"""A seeded corpus without a model, cheap fake catalogues and ids, figures for the README."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexer.records import VideoMeta
from indexer.service import Service
from tests.fakes.youtube import FakeVideo

__all__ = ["FIGURES_ENV", "bulk_catalogue", "read_figures", "record_figure", "seed_corpus",
           "video_id"]

# When set, tests append the figures the README "Reliability" section quotes to this file.
FIGURES_ENV = "THUMBSEARCH_RELIABILITY_FIGURES"
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def video_id(n: int, prefix: str = "r") -> str:
    """A valid 11-character video id made from a number."""
    digits = []
    for _ in range(10):
        n, rest = divmod(n, 64)
        digits.append(_ALPHABET[rest])
    return (prefix + "".join(reversed(digits)))[:11]


def seed_corpus(service: Service, count: int, *, seed: int = 0,
                ids: Sequence[str] | None = None) -> list[str]:
    """Store ``count`` videos with random unit vectors for the service's model; index saved."""
    service.prepare_for_writing()
    rng = np.random.default_rng(seed)
    names = list(ids) if ids is not None else [video_id(i) for i in range(count)]
    metas = [VideoMeta(video_id=v, source="test", title=f"video {v}",
                       thumbnail_url=f"https://i.ytimg.com/vi/{v}/mqdefault.jpg")
             for v in names]
    vectors = rng.standard_normal((len(names), service.spec.dim)).astype(np.float32)
    row_ids = service.store.add_embedded(metas, vectors, service.spec.model_id)
    index = service.index()
    index.add(row_ids, vectors)
    index.save()
    return names


def record_figure(name: str, value: Any) -> None:
    """Append one figure (JSON line) to $THUMBSEARCH_RELIABILITY_FIGURES when it is set."""
    target = os.environ.get(FIGURES_ENV)
    if target:
        with Path(target).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"name": name, "value": value}) + "\n")


def read_figures(path: Path) -> dict[str, Any]:
    """The figures record_figure wrote to ``path``, by name (the last one of a name wins)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return {entry["name"]: entry["value"] for entry in map(json.loads, lines)}


def bulk_catalogue(count: int, query: str = "bulk",
                   prefix: str = "b") -> tuple[list[FakeVideo], dict[str, list[str]]]:
    """``count`` cheap fake videos (solid-colour thumbnails) all found by one query."""
    videos = [FakeVideo(video_id=video_id(i, prefix), title=f"{query} video {i}")
              for i in range(count)]
    return videos, {query: [v.video_id for v in videos]}
