"""Pytest fixtures over the fake YouTube servers (loaded as a plugin by tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.youtube import FakeYouTube, photo_catalogue

__all__ = ["fake_youtube", "youtube_env"]


@pytest.fixture
def fake_youtube() -> Iterator[FakeYouTube]:
    """A started FakeYouTube over photo_catalogue(): fresh counters and quota for each test."""
    videos, searches = photo_catalogue()  # built once per session, then shared read-only
    with FakeYouTube(videos, searches) as fake:
        yield fake


@pytest.fixture
def youtube_env(fake_youtube: FakeYouTube, monkeypatch: pytest.MonkeyPatch) -> FakeYouTube:
    """The environment variables that point thumbsearch at fake_youtube (key included)."""
    monkeypatch.setenv("YOUTUBE_API_KEY", fake_youtube.api_key)
    monkeypatch.setenv("THUMBSEARCH_YOUTUBE_ENDPOINT", fake_youtube.api_endpoint)
    monkeypatch.setenv("THUMBSEARCH_THUMBNAIL_BASE", fake_youtube.thumbnail_base)
    monkeypatch.setenv("THUMBSEARCH_ALLOWED_HOSTS", fake_youtube.thumbnail_host)
    return fake_youtube
