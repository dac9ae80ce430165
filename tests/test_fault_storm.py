"""A fault storm: 20% of API and thumbnail requests fail, and the ingest still gets everything.

The API (FakeYouTube.storm) answers 500, 503, 429 or stalls past the client timeout;
the thumbnail host (HostileServer with ``fault_rate``) answers 500, 503, stalls, resets,
drips or cuts bodies short. TinyEmbedder stands in for the model: what is tested is
the retrying of the fetch and API paths, not the embedding.
"""

from __future__ import annotations

import dataclasses
import re
import time

import pytest

from indexer.ingest.queries import ingest_queries
from indexer.service import build_service
from indexer.settings import Settings
from tests.fakes.embedder import TinyEmbedder
from tests.fakes.hostile import Behaviour, HostileServer
from tests.fakes.youtube import FakeYouTube, placeholder_jpeg
from tests.reliability_helpers import bulk_catalogue, record_figure

VIDEOS = 200
FAULT_RATE = 0.2
TIME_BOUND = 90.0  # seconds for the whole ingest, faults and retries included


def test_ingest_through_a_20_percent_fault_storm_gets_every_video(
        monkeypatch: pytest.MonkeyPatch) -> None:
    videos, searches = bulk_catalogue(VIDEOS)
    by_id = {v.video_id: v for v in videos}

    def route(path: str) -> Behaviour:
        match = re.fullmatch(r"/vi/([A-Za-z0-9_-]{11})/mqdefault\.jpg", path)
        if match is None or match.group(1) not in by_id:
            return Behaviour("status", placeholder_jpeg(), status=404)
        return Behaviour("ok", by_id[match.group(1)].thumbnail_jpeg("mqdefault"))

    with FakeYouTube(videos, searches) as fake, \
            HostileServer(route, fault_rate=FAULT_RATE, seed=7, stall=1.5) as thumbs:
        fake.storm("/youtube/v3/", FAULT_RATE, seed=11, stall=1.5)
        # Search results point at the hostile host, as YouTube's point at i.ytimg.com.
        monkeypatch.setattr(fake, "thumbnail_url", lambda video_id, name="mqdefault":
                            thumbs.url(f"/vi/{video_id}/{name}.jpg"))
        settings = dataclasses.replace(Settings.from_env({
            "THUMBSEARCH_HOME": str(Settings.from_env().home),
            "YOUTUBE_API_KEY": fake.api_key, "THUMBSEARCH_YOUTUBE_ENDPOINT": fake.api_endpoint,
            "THUMBSEARCH_THUMBNAIL_BASE": thumbs.url("/vi"),
            "THUMBSEARCH_ALLOWED_HOSTS": thumbs.host}), http_timeout=1.0)
        with build_service(settings, embedder=TinyEmbedder()) as service:
            start = time.monotonic()
            summary = ingest_queries(service, ["bulk"], pages=VIDEOS // 20, per_page=20)
            seconds = time.monotonic() - start
            assert summary.failed == []
            assert summary.new == VIDEOS
            counts = service.store.counts("tiny-test")
            assert counts["videos"] == counts["vectors"] == VIDEOS
            assert service.index().size == VIDEOS
            assert not service.store.videos_without_vector("tiny-test")
        api_faults = sum(fake.storm_faults.values())
        thumb_faults = sum(thumbs.faults.values())
        # The storm really happened, on both servers, at about the rate asked for.
        assert api_faults >= 1 and thumb_faults >= 0.1 * VIDEOS
        assert thumb_faults / len(thumbs.requests) > 0.1
        assert seconds < TIME_BOUND, f"{seconds:.1f}s"
    record_figure("fault_storm", {
        "videos": VIDEOS, "rate": FAULT_RATE, "seconds": round(seconds, 1),
        "api_requests": len(fake.requests), "api_faults": dict(fake.storm_faults),
        "thumbnail_requests": len(thumbs.requests), "thumbnail_faults": dict(thumbs.faults)})
