"""Top-k neighbours of a stored video, an unknown video's thumbnail, or an image. Cheap to
import: NumPy, Pillow and the index are imported by the functions that need them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from indexer.bounds import quote
from indexer.errors import InputError, ThumbnailMissingError, UsageError, VideoNotFoundError
from indexer.urls import checked_url
from search.rerank import NO_RERANK, Rerank

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    from indexer.service import Corpus, Service

__all__ = [
    "MAX_K",
    "Neighbour",
    "SimilarResult",
    "embed_image",
    "image_source_bytes",
    "similar_to_bytes",
    "similar_to_image",
    "similar_to_video",
    "similar_to_videos",
    "video_thumbnail_bytes",
]

MAX_K = 1000
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


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
        raise UsageError(f"-k must be between 1 and {MAX_K}, got {k}")


def embed_image(service: Service, image: Image.Image) -> np.ndarray:
    """The L2-normalised vector (dim,) of one image under the service's model."""
    from indexer.vectors.index import l2_normalise

    embedder = service.embedder
    vector = embedder.embed(embedder.preprocess(image)[None, ...])
    normalised: np.ndarray = l2_normalise(vector)[0]
    return normalised


def _neighbours(corpus: Corpus, queries: np.ndarray, k: int, exclude: Sequence[int | None],
                rerank: Rerank = NO_RERANK) -> list[list[Neighbour]]:
    """Top-k of each query row (float32 (n, dim)), one ``index.search`` call for all (two
    with query expansion).

    ``exclude[i]`` is the query's own row id (a stored video is not its own neighbour).
    """
    if rerank.active:
        from search.reranking import reranked_pairs

        pairs = reranked_pairs(corpus, queries, k, exclude, rerank)
    else:
        extra = 1 if any(e is not None for e in exclude) else 0
        scores, row_ids = corpus.index.search(queries, k + extra)
        pairs = [[(int(r), float(s)) for r, s in zip(row_ids[i], scores[i], strict=True)
                  if r >= 0 and r != exclude[i]][:k] for i in range(len(exclude))]
    by_row = corpus.reads.video_ids_for_rows(sorted({r for p in pairs for r, _ in p}))
    stored = corpus.reads.get_videos(list(dict.fromkeys(by_row.values())))
    answers: list[list[Neighbour]] = []
    for query_pairs in pairs:
        out: list[Neighbour] = []
        for row, score in query_pairs:
            video = stored.get(by_row.get(row, ""))
            if video is None:
                continue  # deleted after the snapshot was taken
            out.append(Neighbour(rank=len(out) + 1, video_id=video.video_id,
                                 title=video.title, channel_title=video.channel_title,
                                 score=round(score, 6), thumbnail_url=video.thumbnail_url))
        answers.append(out)
    return answers


def video_thumbnail_bytes(service: Service, video_id: str) -> bytes:
    """The thumbnail of a video that is not stored, downloaded from the thumbnail host;
    VideoNotFoundError when YouTube has none (or the id names a local file)."""
    from indexer.ingest.local import LOCAL_ID_PREFIX

    if video_id.startswith(LOCAL_ID_PREFIX):
        raise VideoNotFoundError(f"{video_id} is not in the corpus")
    try:
        return service.fetcher.fetch(service.settings.thumbnail_url(video_id))
    except ThumbnailMissingError as exc:
        raise VideoNotFoundError(
            f"video {video_id} is not in the corpus and YouTube has no thumbnail for it "
            "(404): check the id") from exc


def similar_to_video(service: Service, video_id: str, k: int = 10,
                     rerank: Rerank = NO_RERANK) -> SimilarResult:
    """Neighbours of a video: its stored vector, or its thumbnail embedded on the fly;
    ``rerank`` re-orders them (``search.rerank``)."""
    _check_k(k)
    corpus = service.require_corpus()
    stored = corpus.reads.get_vector(video_id, service.spec.model_id)
    if stored is not None:
        row_id, vector = stored
        results = _neighbours(corpus, vector[None, :], k, [row_id], rerank)[0]
    else:
        from indexer.images.decode import decode_image

        image = decode_image(video_thumbnail_bytes(service, video_id),
                             service.settings.thumbnail_url(video_id))
        results = _neighbours(corpus, embed_image(service, image)[None, :], k, [None],
                              rerank)[0]
    return SimilarResult(query={"video_id": video_id}, model=service.spec.model_id,
                         results=results)


def similar_to_videos(service: Service, video_ids: Sequence[str], k: int = 10,
                      rerank: Rerank = NO_RERANK) -> list[SimilarResult | None]:
    """Neighbours of many stored videos, in one index search; None where one is not stored.

    The answer for each id is the one ``similar_to_video`` gives. Ids without a
    stored vector for the service's model are not embedded (no download, no model).
    """
    import numpy as np

    _check_k(k)
    corpus = service.require_corpus()
    model = service.spec.model_id
    found: dict[str, tuple[int, np.ndarray]] = {}
    for video_id in dict.fromkeys(video_ids):
        stored = corpus.reads.get_vector(video_id, model)
        if stored is not None:
            found[video_id] = stored
    if not found:
        return [None] * len(video_ids)
    order = list(found)
    matrix = np.stack([found[v][1] for v in order]).astype(np.float32, copy=False)
    answers = dict(zip(order, _neighbours(corpus, matrix, k, [found[v][0] for v in order],
                                               rerank),
                       strict=True))
    return [SimilarResult(query={"video_id": v}, model=model, results=answers[v])
            if v in answers else None for v in video_ids]


def _source_scheme(source: str) -> str:
    """``http``/``https`` for an image URL (checked), ``""`` for a file path; InputError for
    any other scheme."""
    # Not urlsplit: it raises on a malformed URL ("http://[::1") before it names the scheme.
    named = _SCHEME.match(source)
    scheme = named.group(1).lower() if named else ""
    if scheme in ("http", "https"):
        checked_url(source)  # one line for a malformed URL, before anything is opened
        return scheme
    if len(scheme) > 1:  # a one-letter scheme is a Windows drive, i.e. a path
        raise InputError(f"{quote(source)}: only image files and http(s) URLs are accepted, "
                         f"not {quote(scheme)} URLs")
    return ""


def image_source_bytes(service: Service, source: str) -> bytes:
    """The bytes of an image file or an http(s) image URL (from an allowed host), read
    within the size limit; one clear line for anything else."""
    from indexer.images.decode import read_image_bytes

    if _source_scheme(source):
        return service.fetcher.fetch(source)
    return read_image_bytes(Path(source), service.settings.max_image_bytes)


def similar_to_image(service: Service, source: str, k: int = 10,
                     rerank: Rerank = NO_RERANK) -> SimilarResult:
    """Neighbours of an image file or an http(s) image URL (from an allowed host)."""
    from indexer.images.decode import decode_image

    _check_k(k)
    label = quote(source) if _source_scheme(source) else source
    corpus = service.require_corpus()
    image = decode_image(image_source_bytes(service, source), label)
    return SimilarResult(query={"image": source}, model=service.spec.model_id,
                         results=_neighbours(corpus, embed_image(service, image)[None, :], k,
                                             [None], rerank)[0])


def similar_to_bytes(service: Service, data: bytes, name: str, k: int = 10,
                     rerank: Rerank = NO_RERANK) -> SimilarResult:
    """Neighbours of image bytes (an upload); ``name`` labels the query."""
    from indexer.images.decode import decode_image

    _check_k(k)
    corpus = service.require_corpus()
    image = decode_image(data, name)
    return SimilarResult(query={"image": name}, model=service.spec.model_id,
                         results=_neighbours(corpus, embed_image(service, image)[None, :], k,
                                             [None], rerank)[0])
