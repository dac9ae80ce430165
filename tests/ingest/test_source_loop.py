"""The ingest loop over a small fake source: the real pipeline, claims and videos.list details.

The source is a list of fake YouTube videos read in groups of seven; the loop claims
each video once, leaves a video another worker holds to it until that claim expires,
hands every stored group back to the source in order, and asks videos.list about the
stored videos 50 ids a call.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Iterator

import pytest

from indexer.ingest.claims import Claims, video_key
from indexer.ingest.details import Details
from indexer.ingest.loop import Loop
from indexer.ingest.pipeline import PipelineResult, WorkItem
from indexer.ingest.run import IngestRun
from indexer.ingest.source import WAIT, Group, Wait
from indexer.ingest.summary import IngestSummary
from indexer.progress import NullProgress
from indexer.records import VideoMeta
from indexer.service import Service, build_service
from indexer.settings import Settings
from indexer.store.metadata import Store
from tests.fakes.corpus import video_id
from tests.fakes.embedder import TinyEmbedder
from tests.fakes.youtube import FakeVideo, FakeYouTube

VIDEOS = 120
GROUP = 7


@pytest.fixture
def fake_youtube() -> Iterator[FakeYouTube]:
    """120 cheap videos, no searches."""
    videos = [FakeVideo(video_id=video_id(i, "s"), title=f"source video {i}")
              for i in range(VIDEOS)]
    with FakeYouTube(videos) as server:
        yield server


class CountingClaims(Claims):
    """Claims that count, per key, how often a claim on it succeeded."""

    def __init__(self, store: Store, lease: float, host: str) -> None:
        super().__init__(store, lease, host)
        self.taken: Counter[str] = Counter()

    def claim(self, keys: Iterable[str]) -> set[str]:
        """Claim ``keys`` and count those newly taken."""
        wanted = list(keys)
        before = self.held()
        got = super().claim(wanted)
        self.taken.update(got - before)
        return got


class ListSource:
    """Fake videos in groups of seven; records what the loop hands back."""

    claims = True

    def __init__(self, service: Service, ids: list[str], *, wait_once: bool = False) -> None:
        self.service = service
        self.ids = ids
        self.wait_once = wait_once
        self.settled: list[str] = []
        self.groups_stored: list[int] = []
        self.handed_over: list[str] = []

    def groups(self) -> Iterator[Group[int] | Wait]:
        """The ids as work items, seven a group, each group noted by its number."""
        for number, start in enumerate(range(0, len(self.ids), GROUP)):
            if self.wait_once and number == 1:
                yield WAIT
            ids = self.ids[start:start + GROUP]
            yield Group([WorkItem(meta=VideoMeta(video_id=v, source="youtube"),
                                  url=self.service.settings.thumbnail_url(v)) for v in ids],
                        number)

    def settle(self, group: Group[int], ids: list[str]) -> set[str]:
        """The ids stored already."""
        done = self.service.store.embedded_ids(ids, self.service.spec.model_id)
        self.settled.extend(done)
        return done

    def stored(self, group: Group[int], result: PipelineResult) -> list[str]:
        """Note the group; its stored videos want details."""
        if group.handover:
            self.handed_over.extend(result.stored)
        else:
            self.groups_stored.append(group.note)
        return result.stored


@pytest.fixture
def service(youtube_env: FakeYouTube) -> Iterator[Service]:
    made = build_service(Settings.from_env(), embedder=TinyEmbedder(), sleep=lambda _s: None)
    made.prepare_for_writing()
    yield made
    made.close()


def _run(service: Service, source: ListSource, claims: CountingClaims,
         details: bool = True) -> tuple[IngestSummary, Details]:
    summary = IngestSummary()
    run = IngestRun(service, summary, claims=claims)
    asked = Details(service, summary, [], ends_run=False, progress=NullProgress())
    with claims:
        try:
            stop = Loop(source, run, summary=summary, claims=claims,
                        model=service.spec.model_id, details=asked if details else None).run()
        finally:
            run.close()
    assert stop is None
    return summary, asked


def _videos_list_sizes(fake: FakeYouTube) -> list[int]:
    return [len((r.param("id") or "").split(",")) for r in fake.requests
            if r.path == "/youtube/v3/videos"]


def test_each_video_is_claimed_once_stored_once_and_enriched_fifty_at_a_time(
        service: Service, youtube_env: FakeYouTube) -> None:
    ids = [video_id(i, "s") for i in range(VIDEOS)]
    source = ListSource(service, ids, wait_once=True)
    claims = CountingClaims(service.store, 60.0, "loop-test")
    summary, asked = _run(service, source, claims)

    model = service.spec.model_id
    assert claims.taken == Counter({video_key(model, v): 1 for v in ids})
    assert claims.held() == set()  # each claim went once its group was stored
    assert service.store.embedded_ids(ids, model) == set(ids)
    assert summary.new == VIDEOS and summary.failed == [] and summary.known == 0
    assert youtube_env.thumbnail_requests == Counter(dict.fromkeys(ids, 1))
    embedder = service.embedder
    assert isinstance(embedder, TinyEmbedder) and sum(embedder.batches) == VIDEOS
    # Every group came back, in order, once; none was found stored before.
    assert source.groups_stored == list(range(-(-VIDEOS // GROUP)))
    assert source.settled == [] and source.handed_over == []
    # Details in whole batches of 50 while the groups came back, the rest at the end.
    assert _videos_list_sizes(youtube_env) == [50, 50, 20]
    assert summary.enriched == VIDEOS and asked.asked == set(ids) and asked.stop is None


def test_a_video_another_worker_holds_is_left_to_it_then_taken_over_once_expired(
        service: Service, youtube_env: FakeYouTube) -> None:
    ids = [video_id(i, "s") for i in range(20)]
    model = service.spec.model_id
    stored_elsewhere = ids[10]  # stored by an earlier run: settled, not stored again
    first = ListSource(service, [stored_elsewhere])
    _run(service, first, CountingClaims(service.store, 60.0, "loop-test"), details=False)
    other = Claims(service.store, 1.5, "other-host")  # never renewed: expires in 1.5 s
    held = {video_key(model, v) for v in ids[3:5]}
    assert other.claim(held) == held
    source = ListSource(service, ids)
    claims = CountingClaims(service.store, 60.0, "loop-test")
    started = time.monotonic()
    summary, _ = _run(service, source, claims, details=False)

    assert time.monotonic() - started >= 1.0  # it waited for the claims to expire
    assert claims.taken == Counter({video_key(model, v): 1 for v in ids})
    assert sorted(source.handed_over) == sorted(ids[3:5])
    assert source.settled == [stored_elsewhere]
    assert summary.new == len(ids) - 1 and summary.failed == []
    assert service.store.embedded_ids(ids, model) == set(ids)
    assert youtube_env.thumbnail_requests == Counter(dict.fromkeys(ids, 1))
    assert claims.held() == set()
