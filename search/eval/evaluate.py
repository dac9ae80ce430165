"""Batch evaluation of retrieval quality: labelled sets embedded (with a cache) or the corpus."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexer.bounds import quote
from indexer.errors import FetchError, ImageDecodeError, ImagePathError, InputError, UsageError
from indexer.images.decode import decode_image, read_image_bytes
from indexer.progress import NullProgress, Plan, Progress, Task, plural
from indexer.service import Service
from indexer.vectors.index import l2_normalise
from search.eval.cache import EmbeddingCache
from search.eval.data import EvalItem, LabelledSet, load_labelled_set, read_list_file
from search.eval.metrics import (
    INDEX_TYPES,
    RetrievalScores,
    approximate_recall,
    score_by_group,
    score_vectors,
)
from search.eval.whitening import PcaWhitening
from search.rerank import NO_RERANK, Rerank

__all__ = [
    "LABEL_BY",
    "EmbeddedSet",
    "EvalRun",
    "SetEvaluation",
    "embed_sets",
    "evaluate_corpus",
    "evaluate_sets",
    "parse_ks",
]

LABEL_BY = ("query", "channel")
MAX_K = 1000
_MAX_KS_TEXT = 200  # characters of --k: room for dozens of cut-offs
ITEM_ERRORS = (FetchError, ImageDecodeError, ImagePathError)

ImageReader = Callable[[int], bytes | None]


@dataclass
class SetEvaluation:
    """The scores of one set, with what the report needs to show its images."""

    name: str
    scores: RetrievalScores
    names: list[str]
    labels: list[str]
    vectors: np.ndarray  # (n, dim) float32, L2-normalised
    failed: list[tuple[str, str]] = field(default_factory=list)
    approximate: dict[int, float] | None = None
    read_image: ImageReader = field(default=lambda _: None, repr=False)
    embedded: int = 0  # images run through the model (the rest came from the cache)
    kinds: list[str | None] = field(default_factory=list)  # variant kind of each image
    by_kind: dict[str, RetrievalScores] = field(default_factory=dict)  # scores per kind

    def to_json(self, index_type: str) -> dict[str, Any]:
        """The documented JSON shape of one dataset in ``eval --json``."""
        s = self.scores
        out: dict[str, Any] = {
            "name": self.name, "queries": s.queries, "labels": s.labels,
            "distractors": s.distractors,
            "recall": {str(k): round(v, 6) for k, v in s.recall.items()},
            "precision": {str(k): round(v, 6) for k, v in s.precision.items()},
            "mAP": round(s.mAP, 6),
            "images": len(self.labels), "embedded": self.embedded,
            "failed": [{"item": item, "reason": reason} for item, reason in self.failed],
        }
        if self.by_kind:
            out["kinds"] = {kind: {"queries": k.queries,
                                   "recall": {str(c): round(v, 6) for c, v in k.recall.items()},
                                   "mAP": round(k.mAP, 6)}
                            for kind, k in self.by_kind.items()}
        if self.approximate is not None:
            out["index"] = {"type": index_type,
                            "recall_vs_exact": {str(k): round(v, 6)
                                                for k, v in self.approximate.items()}}
        return out


@dataclass(frozen=True)
class EmbeddedSet:
    """A labelled set's readable items with their vectors (L2-normalised, in item order)."""

    name: str
    items: list[EvalItem]
    vectors: np.ndarray  # (n, dim) float32
    failed: list[tuple[str, str]]
    embedded: int  # images run through the model (the rest came from the cache)


@dataclass
class EvalRun:
    """One evaluation: the model, the k values and a result per set."""

    model: str
    ks: list[int]
    index_type: str
    sets: list[SetEvaluation]
    rerank: Rerank = NO_RERANK
    whitening: str | None = None  # what the PCA-whitening was learned on

    @property
    def options(self) -> str:
        """The search options, as a column title: the re-ranking and the whitening."""
        parts = [] if self.whitening is None else [f"pcaw({self.whitening})"]
        if self.rerank.active or not parts:
            parts.append(self.rerank.name)
        return "+".join(parts)

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape of ``eval --json``."""
        return {"model": self.model, "rerank": self.rerank.to_json(),
                "whitening": self.whitening,
                "datasets": [s.to_json(self.index_type) for s in self.sets]}


def parse_ks(text: str) -> list[int]:
    """``"1,5,10"`` -> [1, 5, 10], each within 1..MAX_K; UsageError (exit 2) otherwise."""
    parts = [part.strip() for part in text.split(",")] if len(text) <= _MAX_KS_TEXT else ["?"]
    if not all(part.isascii() and part.isdigit() for part in parts if part):
        raise UsageError(f"-k/--top-k must be comma-separated whole numbers such as 1,5,10, "
                         f"got {quote(text)}")
    # A part of more than 4 digits is out of range: int() never builds a huge number.
    ks = sorted({int(part) if len(part) <= 4 else MAX_K + 1 for part in parts if part})
    if not ks or ks[0] < 1 or ks[-1] > MAX_K:
        raise UsageError(f"-k/--top-k values must be within 1..{MAX_K}, got {quote(text)}")
    return ks


def _check_index_type(index_type: str) -> None:
    if index_type not in INDEX_TYPES:
        raise InputError(f"unknown index type {quote(index_type)}; "
                         f"use one of {', '.join(INDEX_TYPES)}")


def _finish(name: str, vectors: np.ndarray, labels: list[str], names: list[str],
            ks: Sequence[int], index_type: str, rerank: Rerank = NO_RERANK) -> SetEvaluation:
    if not labels:
        raise InputError(f"{name}: no usable images")
    try:
        scores = score_vectors(vectors, labels, ks, rerank)
    except InputError as exc:
        raise InputError(f"{name}: {exc}") from None
    approximate = None
    if index_type != "exact":
        approximate = {k: approximate_recall(vectors, k, index_type) for k in ks}
    return SetEvaluation(name=name, scores=scores, names=names, labels=labels, vectors=vectors,
                         approximate=approximate)


def _item_bytes(service: Service, item: EvalItem) -> bytes:
    if item.path is not None:
        return read_image_bytes(item.path, service.settings.max_image_bytes)
    url = service.settings.thumbnail_url(item.video_id or "")
    return service.fetcher.fetch(url)


def _embed_set(service: Service, labelled: LabelledSet, cache: EmbeddingCache,
               progress: Progress) -> tuple[list[int], np.ndarray, list[tuple[str, str]],
                                                   int]:
    """Vectors of the items that could be read: (item positions, (n, dim), failures, embedded)."""
    batch_size = max(1, service.settings.batch_size)
    kept: list[int] = []
    vectors: list[np.ndarray] = []
    failed: list[tuple[str, str]] = []
    embedded = 0
    items = labelled.items
    for start in range(0, len(items), batch_size):
        chunk = list(enumerate(items[start:start + batch_size], start=start))
        data: dict[int, bytes] = {}
        digests: dict[int, str] = {}
        for position, item in chunk:
            try:
                data[position] = _item_bytes(service, item)
            except ITEM_ERRORS as exc:
                failed.append((item.name, str(exc)))
                continue
            digests[position] = hashlib.sha256(data[position]).hexdigest()
        known = cache.get_many(digests.values())
        todo: list[int] = []
        pixels: list[np.ndarray] = []
        for position, digest in digests.items():
            if digest in known or digest in (digests[p] for p in todo):
                continue  # cached, or the same bytes already wait in this batch
            try:
                # The model (and TensorFlow) loads only when something is not cached.
                pixels.append(service.embedder.preprocess(decode_image(data[position],
                                                               items[position].name)))
            except ITEM_ERRORS as exc:
                failed.append((items[position].name, str(exc)))
                continue
            todo.append(position)
        if todo:
            new = l2_normalise(service.embedder.embed(np.stack(pixels)))
            fresh = {digests[p]: v for p, v in zip(todo, new, strict=True)}
            cache.put_many(fresh.items())
            known.update(fresh)
            embedded += len(todo)
        for position, digest in digests.items():
            if digest in known:
                kept.append(position)
                vectors.append(known[digest])
        progress.advanced(labelled.name, len(chunk), f"{embedded} embedded")
    dim = service.spec.dim
    matrix = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, dim), np.float32)
    return kept, matrix, failed, embedded


def evaluate_sets(service: Service, paths: Sequence[Path], ks: Sequence[int] = (1, 5, 10),
                  index_type: str = "exact", progress: Progress | None = None, *,
                  rerank: Rerank = NO_RERANK, whiten_on: Path | None = None) -> EvalRun:
    """Embed every labelled set with the service's model (cached) and score it;
    ``progress`` counts each set's images as they are embedded (or found in the cache).

    ``rerank`` re-ranks every query's answer; ``whiten_on`` names a folder of images (label
    folders or loose files, or a CSV) to learn a PCA-whitening on, applied to every set.
    """
    _check_index_type(index_type)
    progress = progress or NullProgress()
    labelled_sets = [load_labelled_set(Path(p), service.settings.max_ids_file_bytes)
                     for p in paths]
    learn = None if whiten_on is None else _whitening_set(whiten_on, service)
    if learn is not None:
        labelled_sets.insert(0, learn)
    model_id = service.spec.model_id
    tasks = tuple(Task(s.name, len(s.items), "images") for s in labelled_sets)
    progress.started(Plan("eval", f"{plural(len(tasks), 'set')}, "
                                  f"{plural(sum(t.total for t in tasks), 'image')}",
                          tasks, "images", of="sets" if len(tasks) > 1 else ""))
    cache = EmbeddingCache(service.settings.home / "cache" / "eval", model_id)
    results = []
    whitening: PcaWhitening | None = None
    try:
        for labelled in labelled_sets:
            kept, matrix, failed, embedded = _embed_set(service, labelled, cache, progress)
            if labelled is learn:
                whitening = PcaWhitening.fit(matrix)
                progress.finished(labelled.name, f"whitening learned on {len(kept)} images")
                continue
            if whitening is not None:
                matrix = whitening.apply(matrix)
            items = [labelled.items[p] for p in kept]
            result = _finish(labelled.name, matrix, [i.label for i in items],
                             [i.name for i in items], ks, index_type, rerank)
            result.failed, result.embedded = failed, embedded
            kinds = [i.kind for i in items]
            if any(kind is not None for kind in kinds):
                result.kinds = kinds
                result.by_kind = score_by_group(matrix, result.labels, kinds, ks, rerank)
            progress.finished(labelled.name, f"scored, mAP {result.scores.mAP:.3f}")

            def read(i: int, items: list[EvalItem] = items) -> bytes | None:
                try:
                    return _item_bytes(service, items[i])
                except ITEM_ERRORS:
                    return None

            result.read_image = read
            results.append(result)
    finally:
        cache.close()
    images = sum(len(r.labels) for r in results)
    embedded_count = sum(r.embedded for r in results)
    progress.ended(f"{plural(images, 'image')} scored ({embedded_count} embedded, "
                   f"{images - embedded_count} from the cache)")
    return EvalRun(model=model_id, ks=sorted(set(ks)), index_type=index_type, sets=results,
                   rerank=rerank, whitening=None if learn is None else learn.name)


def embed_sets(service: Service, paths: Sequence[Path],
               progress: Progress | None = None) -> list[EmbeddedSet]:
    """Embed every labelled set with the service's model, through the same cache as
    evaluate_sets; ``progress`` counts each set's images."""
    progress = progress or NullProgress()
    labelled_sets = [load_labelled_set(Path(p), service.settings.max_ids_file_bytes)
                     for p in paths]
    tasks = tuple(Task(s.name, len(s.items), "images") for s in labelled_sets)
    progress.started(Plan("embed", f"{plural(len(tasks), 'set')}, "
                                   f"{plural(sum(t.total for t in tasks), 'image')}",
                          tasks, "images", of="sets" if len(tasks) > 1 else ""))
    cache = EmbeddingCache(service.settings.home / "cache" / "eval", service.spec.model_id)
    out = []
    try:
        for labelled in labelled_sets:
            kept, matrix, failed, embedded = _embed_set(service, labelled, cache, progress)
            if not kept:
                raise InputError(f"{labelled.name}: no usable images")
            out.append(EmbeddedSet(labelled.name, [labelled.items[p] for p in kept], matrix,
                                   failed, embedded))
            progress.finished(labelled.name, f"{plural(len(kept), 'image')}")
    finally:
        cache.close()
    embedded_count = sum(s.embedded for s in out)
    progress.ended(f"{plural(sum(len(s.items) for s in out), 'image')} "
                   f"({embedded_count} embedded)")
    return out


def _whitening_set(path: Path, service: Service) -> LabelledSet:
    """The images to learn a whitening on: a labelled set, or a folder of loose images."""
    from indexer.images.decode import IMAGE_SUFFIXES

    if path.is_dir():
        loose = sorted(p for p in path.rglob("*")
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        if not loose:
            raise InputError(f"{path}: no images to learn a whitening on")
        return LabelledSet(name=path.resolve().name, source=path,
                           items=tuple(EvalItem(label="-", path=p) for p in loose))
    return load_labelled_set(path, service.settings.max_ids_file_bytes)


def _labels_from_file(path: Path, max_bytes: int) -> dict[str, str]:
    rows = list(csv.reader(read_list_file(path, "labels file", max_bytes).splitlines()))
    labels: dict[str, str] = {}
    for number, row in enumerate(rows, start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            raise InputError(f"{path}:{number}: expected `video_id,label`, got {quote(row)}")
        if number == 1 and row[0].strip().lower() in ("video_id", "id"):
            continue
        labels[row[0].strip()] = row[1].strip()
    if not labels:
        raise InputError(f"{path}: the labels file lists no videos")
    return labels


def evaluate_corpus(service: Service, *, labels_file: Path | None = None,
                    label_by: str | None = None, ks: Sequence[int] = (1, 5, 10),
                    index_type: str = "exact", progress: Progress | None = None,
                    rerank: Rerank = NO_RERANK) -> EvalRun:
    """Score the corpus' stored vectors (no embedding) against labels from a file or metadata;
    ``progress`` counts the stored vectors as they are read."""
    _check_index_type(index_type)
    if (labels_file is None) == (label_by is None):
        raise InputError("give either --labels FILE or --label-by query|channel")
    if label_by is not None and label_by not in LABEL_BY:
        raise InputError(f"--label-by must be one of {', '.join(LABEL_BY)}, got {quote(label_by)}")
    service.require_corpus()
    store, model_id = service.store, service.spec.model_id
    if labels_file is not None:
        wanted = _labels_from_file(labels_file, service.settings.max_ids_file_bytes)
        name = labels_file.stem
    elif label_by == "channel":
        wanted, name = store.channel_of_videos(), "corpus by channel"
    else:
        wanted, name = store.first_query_of_videos(), "corpus by query"
    progress = progress or NullProgress()
    stored = store.counts(model_id)["vectors"]
    progress.started(Plan("eval", f"{plural(stored, 'stored video')} ({name})",
                          (Task(name, stored, "videos"),), "videos"))
    ids, vectors = [], []
    for row_ids, chunk in store.iter_vectors(model_id):
        progress.advanced(name, len(row_ids), "read")
        by_row = store.video_ids_for_rows(row_ids.tolist())
        for row, vector in zip(row_ids.tolist(), chunk, strict=True):
            video_id = by_row.get(row)
            if video_id is not None and video_id in wanted:
                ids.append(video_id)
                vectors.append(vector)
    present = set(ids)
    failed = [(v, f"not in the corpus for model {model_id}") for v in wanted
              if v not in present] if labels_file is not None else []
    matrix = l2_normalise(np.stack(vectors)) if vectors else np.zeros((0, service.spec.dim),
                                                                      np.float32)
    result = _finish(name, matrix, [wanted[v] for v in ids], ids, ks, index_type, rerank)
    result.failed = failed
    progress.finished(name, f"scored, mAP {result.scores.mAP:.3f}")
    progress.ended(f"{plural(len(ids), 'labelled video')} scored")
    videos = store.get_videos(ids)

    def read(i: int) -> bytes | None:
        video = videos.get(ids[i])
        digest = video.thumbnail_sha256 if video is not None else None
        return service.cache.get(digest) if digest else None

    result.read_image = read
    return EvalRun(model=model_id, ks=sorted(set(ks)), index_type=index_type, sets=[result],
                   rerank=rerank)
