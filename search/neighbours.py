"""Top-k neighbours of a stored video, an unknown video's thumbnail, or an image."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

from indexer.errors import InputError, ThumbnailMissingError, VideoNotFoundError
from indexer.images import decode_image, read_image_file
from indexer.local import LOCAL_ID_PREFIX
from indexer.service import Service
from indexer.vector_index import l2_normalise

__all__ = [
    "MAX_K",
    "Neighbour",
    "SimilarResult",
    "similar_to_bytes",
    "similar_to_image",
    "similar_to_video",
]

MAX_K = 1000


@dataclass(frozen=True)
class Neighbour:
    """One result: a stored video and its cosine similarity to the query."""

    rank: int
    video_id: str
    title: str
    channel_title: str
    score: float
    thumbnail_url: str


@dataclass(frozen=True)
class SimilarResult:
    """The answer to one similarity query."""

    query: dict[str, str]
    model: str
    results: list[Neighbour]

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape of ``similar --json``."""
        return {"query": self.query, "model": self.model,
                "results": [asdict(r) for r in self.results]}


def _check_k(k: int) -> None:
    if not 1 <= k <= MAX_K:
        raise InputError(f"-k must be between 1 and {MAX_K}, got {k}")


def _embed_one(service: Service, image: Image.Image) -> np.ndarray:
    embedder = service.embedder
    vector = embedder.embed(embedder.preprocess(image)[None, ...])
    normalised: np.ndarray = l2_normalise(vector)[0]
    return normalised


def _neighbours(service: Service, vector: np.ndarray, k: int,
                exclude: int | None = None) -> list[Neighbour]:
    index = service.require_corpus()
    scores, row_ids = index.search(vector[None, :], k + (1 if exclude is not None else 0))
    pairs = [(int(r), float(s)) for r, s in zip(row_ids[0], scores[0], strict=True)
             if r >= 0 and r != exclude][:k]
    by_row = service.store.video_ids_for_rows([r for r, _ in pairs])
    stored = service.store.get_videos(list(by_row.values()))
    out: list[Neighbour] = []
    for row, score in pairs:
        video = stored.get(by_row.get(row, ""))
        if video is None:
            continue  # deleted after the snapshot was taken
        out.append(Neighbour(rank=len(out) + 1, video_id=video.video_id, title=video.title,
                             channel_title=video.channel_title, score=round(score, 6),
                             thumbnail_url=video.thumbnail_url))
    return out


def similar_to_video(service: Service, video_id: str, k: int = 10) -> SimilarResult:
    """Neighbours of a video: its stored vector, or its thumbnail embedded on the fly."""
    _check_k(k)
    service.require_corpus()
    stored = service.store.get_vector(video_id, service.spec.model_id)
    if stored is not None:
        row_id, vector = stored
        results = _neighbours(service, vector, k, exclude=row_id)
    elif video_id.startswith(LOCAL_ID_PREFIX):
        raise VideoNotFoundError(f"{video_id} is not in the corpus")
    else:
        url = service.settings.thumbnail_url(video_id)
        try:
            image = decode_image(service.fetcher.fetch(url), url)
        except ThumbnailMissingError as exc:
            raise VideoNotFoundError(
                f"video {video_id} is not in the corpus and YouTube has no thumbnail for it "
                "(404): check the id") from exc
        results = _neighbours(service, _embed_one(service, image), k)
    return SimilarResult(query={"video_id": video_id}, model=service.spec.model_id,
                         results=results)


def similar_to_image(service: Service, source: str, k: int = 10) -> SimilarResult:
    """Neighbours of an image file or an http(s) image URL (from an allowed host)."""
    _check_k(k)
    service.require_corpus()
    scheme = urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        image = decode_image(service.fetcher.fetch(source), source)
    elif len(scheme) > 1:  # a one-letter scheme is a Windows drive, i.e. a path
        raise InputError(f"{source!r}: only image files and http(s) URLs are accepted, "
                         f"not {scheme}: URLs")
    else:
        image = read_image_file(Path(source))
    return SimilarResult(query={"image": source}, model=service.spec.model_id,
                         results=_neighbours(service, _embed_one(service, image), k))


def similar_to_bytes(service: Service, data: bytes, name: str, k: int = 10) -> SimilarResult:
    """Neighbours of image bytes (an upload); ``name`` labels the query."""
    _check_k(k)
    service.require_corpus()
    image = decode_image(data, name)
    return SimilarResult(query={"image": name}, model=service.spec.model_id,
                         results=_neighbours(service, _embed_one(service, image), k))
