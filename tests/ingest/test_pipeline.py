"""The pipeline alone, with fake stages: a loader of bytes in memory, TinyEmbedder, a writer
and an index that only record what they are given. No HTTP, no database, no model."""

from __future__ import annotations

import hashlib
import io
import threading
from pathlib import Path
from typing import cast

import numpy as np
import pytest
from PIL import Image

from indexer.errors import FetchError, StoreError
from indexer.images.thumbcache import ThumbnailCache
from indexer.ingest.pipeline import Pipeline, PipelineResult, WorkItem, make_loader, run_pipeline
from indexer.records import VideoMeta
from indexer.store.metadata import Store
from tests.fakes.corpus import video_id
from tests.fakes.embedder import TinyEmbedder

NO_STORE = cast(Store, None)  # every test gives its own writer: the store is never used


def _png(n: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 9), ((n * 37) % 256, (n * 91) % 256, (n * 13) % 256)).save(out, "PNG")
    return out.getvalue()


def _items(count: int, start: int = 0) -> list[WorkItem]:
    return [WorkItem(VideoMeta(video_id=video_id(n), source="test", title=f"video {n}"),
                     url=f"fake://{n}") for n in range(start, start + count)]


class FakeLoader:
    """Bytes by URL; a URL it does not hold is a failed download."""

    def __init__(self, bodies: dict[str, bytes]) -> None:
        self.bodies = bodies
        self.asked: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, item: WorkItem) -> bytes:
        assert item.url is not None
        with self._lock:
            self.asked.append(item.url)
        if item.url not in self.bodies:
            raise FetchError(f"no image at {item.url} (404)")
        return self.bodies[item.url]


class FakeWriter:
    """Stores nothing: keeps each batch and gives its rows the next ids; may fail on a call."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.batches: list[tuple[list[VideoMeta], np.ndarray, str]] = []
        self.fail_on = fail_on
        self.next_id = 1

    def __call__(self, metas: list[VideoMeta], vectors: np.ndarray, model_id: str) -> np.ndarray:
        if self.fail_on is not None and len(self.batches) + 1 == self.fail_on:
            raise StoreError("the database went away")
        self.batches.append((list(metas), vectors.copy(), model_id))
        ids = np.arange(self.next_id, self.next_id + len(metas), dtype=np.int64)
        self.next_id += len(metas)
        return ids


class FakeIndex:
    """Keeps what the writer stage adds, in order."""

    def __init__(self) -> None:
        self.added: list[tuple[np.ndarray, np.ndarray]] = []

    def add_stored(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self.added.append((ids.copy(), vectors.copy()))


def _stages(bodies: dict[str, bytes], **writer: int | None) -> tuple[
        FakeLoader, TinyEmbedder, FakeWriter, FakeIndex]:
    return FakeLoader(bodies), TinyEmbedder(), FakeWriter(**writer), FakeIndex()


def test_items_are_loaded_embedded_and_written_in_batches_and_failures_named() -> None:
    items = _items(11)
    bodies = {item.url: _png(n) for n, item in enumerate(items) if item.url}
    del bodies["fake://3"], bodies["fake://7"]  # downloads that fail
    bodies["fake://9"] = b"<html>not an image</html>"  # decodes to nothing
    loader, embedder, writer, index = _stages(bodies)
    result = run_pipeline(items, loader=loader, embedder=embedder, store=NO_STORE,
                          index=index, batch_size=4, workers=3, write=writer)

    good = [item.meta.video_id for n, item in enumerate(items) if n not in (3, 7, 9)]
    assert result.stored == good  # in submission order
    assert sorted(f.video_id for f in result.failed) == sorted(
        items[n].meta.video_id for n in (3, 7, 9))
    reasons = {f.video_id: f.reason for f in result.failed}
    assert "404" in reasons[items[3].meta.video_id]
    assert reasons[items[9].meta.video_id]
    assert sorted(loader.asked) == sorted(item.url for item in items)  # each loaded once
    # Batches of at most batch_size, every good item once, vectors L2-normalised.
    assert all(len(metas) <= 4 for metas, _, _ in writer.batches)
    assert [m.video_id for metas, _, _ in writer.batches for m in metas] == good
    assert {model for _, _, model in writer.batches} == {"tiny-test"}
    assert sum(embedder.batches) == len(good) and max(embedder.batches) <= 4
    for _, vectors, _ in writer.batches:
        assert vectors.shape[1] == embedder.dim
        assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    # The index gets the ids the writer gave, with the vectors it wrote, batch by batch.
    assert len(index.added) == len(writer.batches)
    assert np.concatenate([ids for ids, _ in index.added]).tolist() == list(
        range(1, len(good) + 1))
    for (_, written, _), (_, indexed) in zip(writer.batches, index.added, strict=True):
        assert np.array_equal(written, indexed)
    assert result.times.wall >= result.times.embed >= 0 and result.times.load > 0


def test_each_stored_vector_is_its_own_images_and_the_steps_cpu_is_counted() -> None:
    # Inputs are gathered in one array reused from batch to batch: a batch must never see
    # (or keep) another's pixels, whatever the batch and pool sizes.
    from indexer.images.decode import decode_image
    from indexer.vectors.index import l2_normalise

    items = _items(23)
    bodies = {item.url: _png(n) for n, item in enumerate(items) if item.url}
    loader, embedder, writer, index = _stages(bodies)
    result = run_pipeline(items, loader=loader, embedder=embedder, store=NO_STORE,
                          index=index, batch_size=5, workers=4, write=writer)
    stored = {m.video_id: v for metas, vectors, _ in writer.batches
              for m, v in zip(metas, vectors, strict=True)}
    assert len(stored) == 23
    for item in items:
        assert item.url is not None
        own = embedder.preprocess(decode_image(bodies[item.url])).reshape(1, -1)
        assert np.allclose(stored[item.meta.video_id], l2_normalise(own)[0], atol=1e-6)
    assert set(result.times.cpu) == {"fetch", "decode", "preprocess", "cache", "batch",
                                     "embed", "write"}
    assert result.times.cpu["decode"] > 0 and result.times.cpu["preprocess"] > 0
    assert all(seconds >= 0 for seconds in result.times.cpu.values())


def test_groups_complete_in_submission_order_each_with_its_own_result() -> None:
    groups = [_items(5, 0), [], _items(1, 10), _items(7, 20)]
    bodies = {item.url: _png(n) for n, group in enumerate(groups) for item in group if item.url}
    del bodies["fake://22"]
    loader, embedder, writer, index = _stages(bodies)
    done: list[tuple[int, PipelineResult]] = []
    with Pipeline[int](loader=loader, embedder=embedder, store=NO_STORE,
                       index=index, batch_size=3, workers=2, write=writer) as pipeline:
        for label, group in enumerate(groups):
            done += [(f.tag, f.result) for f in pipeline.submit(group, label)]
        done += [(f.tag, f.result) for f in pipeline.drain()]
        assert pipeline.poll() == []  # each finished group is handed back once
    assert [label for label, _ in done] == [0, 1, 2, 3]
    for label, result in done:
        wanted = [item.meta.video_id for item in groups[label] if item.url != "fake://22"]
        assert result.stored == wanted
    assert [f.video_id for f in done[3][1].failed] == [video_id(22)]
    assert done[1][1] == PipelineResult()  # an empty group completes, with nothing in it


def test_a_writer_error_is_raised_on_the_submitting_thread_and_stops_the_rest() -> None:
    items = _items(12)
    loader, embedder, writer, index = _stages({i.url: _png(n) for n, i in enumerate(items)
                                               if i.url}, fail_on=2)
    with pytest.raises(StoreError, match="went away"):
        run_pipeline(items, loader=loader, embedder=embedder, store=NO_STORE,
                     index=index, batch_size=4, workers=2, write=writer)
    assert len(writer.batches) == 1 and len(index.added) == 1  # nothing after the failure


def test_an_embedder_error_stops_the_pipeline_before_anything_is_written() -> None:
    class Broken(TinyEmbedder):
        def embed(self, batch: np.ndarray) -> np.ndarray:
            raise RuntimeError("the model fell over")

    items = _items(6)
    loader, _, writer, index = _stages({i.url: _png(n) for n, i in enumerate(items) if i.url})
    with pytest.raises(RuntimeError, match="fell over"):
        run_pipeline(items, loader=loader, embedder=Broken(), store=NO_STORE,
                     index=index, batch_size=2, workers=2, write=writer)
    assert writer.batches == [] and index.added == []


def test_leaving_with_an_exception_cancels_and_returns() -> None:
    items = _items(40)
    loader, embedder, writer, index = _stages({i.url: _png(n) for n, i in enumerate(items)
                                               if i.url})
    with pytest.raises(KeyboardInterrupt), Pipeline(
            loader=loader, embedder=embedder, store=NO_STORE,
            index=index, batch_size=4, workers=2, write=writer) as pipeline:
        pipeline.submit(items, 0)
        raise KeyboardInterrupt
    written = [m.video_id for metas, _, _ in writer.batches for m in metas]
    assert written == [item.meta.video_id for item in items][:len(written)]  # whole batches
    assert sum(len(ids) for ids, _ in index.added) == len(written)


def test_the_cache_keeps_the_bytes_of_images_that_decoded(tmp_path: Path) -> None:
    items = _items(4)
    bodies = {i.url: _png(n) for n, i in enumerate(items) if i.url}
    bodies["fake://2"] = b"not an image"
    loader, embedder, writer, index = _stages(bodies)
    cache = ThumbnailCache(tmp_path / "cache")
    result = run_pipeline(items, loader=loader, embedder=embedder, store=NO_STORE,
                          index=index, cache=cache, write=writer)
    assert len(result.stored) == 3
    metas = [m for batch, _, _ in writer.batches for m in batch]
    for meta in metas:
        body = bodies[f"fake://{int(meta.title.split()[1])}"]
        assert meta.thumbnail_sha256 == hashlib.sha256(body).hexdigest()
        assert cache.get(meta.thumbnail_sha256) == body
    assert len(list((tmp_path / "cache").rglob("*"))) == 3 + 3  # three folders, three files


def test_make_loader_reads_paths_fetches_urls_and_refuses_neither(tmp_path: Path) -> None:
    class Fetcher:
        def __init__(self) -> None:
            self.urls: list[str] = []

        def fetch(self, url: str) -> bytes:
            self.urls.append(url)
            return b"from " + url.encode()

    fetcher = Fetcher()
    (tmp_path / "a.png").write_bytes(_png(1))
    load = make_loader(fetcher, max_file_bytes=1_000_000)
    meta = VideoMeta(video_id=video_id(1), source="test")
    assert load(WorkItem(meta, path=tmp_path / "a.png")) == _png(1)
    assert load(WorkItem(meta, url="https://i.ytimg.com/x.jpg")) == b"from https://i.ytimg.com/x.jpg"
    assert fetcher.urls == ["https://i.ytimg.com/x.jpg"]
    with pytest.raises(FetchError, match="no image URL or path"):
        load(WorkItem(meta))
