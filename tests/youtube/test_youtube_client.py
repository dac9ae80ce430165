"""The YouTube boundary: error translation by reason code, timestamps, quota reset time."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httplib2
import pytest
from googleapiclient.errors import HttpError

from indexer.errors import (
    ApiKeyInvalidError,
    ApiUnreachableError,
    QuotaExceededError,
    YouTubeError,
)
from indexer.youtube.client import (
    GoogleYouTubeApi,
    parse_rfc3339,
    quota_reset_message,
    translate_http_error,
)
from tests.fakes.youtube import FakeYouTube, google_error


def _http_error(status: int, body: object) -> HttpError:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return HttpError(httplib2.Response({"status": status}), content)


def test_quota_exceeded_is_recognised_by_reason_not_message() -> None:
    error = translate_http_error(_http_error(403, google_error(403, "quotaExceeded")))
    assert isinstance(error, QuotaExceededError)
    assert error.exit_code == 3
    assert "resets at midnight Pacific" in str(error)


def test_invalid_key_is_recognised_by_details_reason() -> None:
    body = google_error(400, "badRequest", "API key not valid. Please pass a valid API key.")
    body["error"]["details"] = [{"reason": "API_KEY_INVALID"}]
    assert isinstance(translate_http_error(_http_error(400, body)), ApiKeyInvalidError)


def test_rate_limit_and_garbage_bodies_are_generic_errors() -> None:
    error = translate_http_error(_http_error(403, google_error(403, "rateLimitExceeded")))
    assert type(error) is YouTubeError and "403" in str(error)
    error = translate_http_error(_http_error(502, b"<html>bad gateway</html>"))
    assert type(error) is YouTubeError and "502" in str(error)


def test_timestamps() -> None:
    assert parse_rfc3339("2024-01-02T03:04:05Z") == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert parse_rfc3339("2024-01-02T03:04:05.123+02:00") is not None
    assert parse_rfc3339("") is None
    assert parse_rfc3339("yesterday") is None


@pytest.mark.parametrize(("now", "reset"), [
    (datetime(2026, 11, 25, 12, 0, tzinfo=UTC), "2026-11-26 08:00 UTC, in 20h00m"),  # PST
    (datetime(2026, 7, 1, 6, 30, tzinfo=UTC), "2026-07-01 07:00 UTC, in 0h30m"),  # PDT
])
def test_quota_resets_at_pacific_midnight(now: datetime, reset: str) -> None:
    assert reset in quota_reset_message(now)


def test_client_reads_pages_and_counts_calls(fake_youtube: FakeYouTube) -> None:
    api = GoogleYouTubeApi(fake_youtube.api_key, fake_youtube.api_endpoint, timeout=5)
    first = api.search_page("reuploads", None, 25)
    assert len(first.videos) == 25 and first.next_page_token
    second = api.search_page("reuploads", first.next_page_token, 50)
    assert len(second.videos) == 35 and second.next_page_token is None
    assert not {v.video_id for v in first.videos} & {v.video_id for v in second.videos}
    assert api.calls["search"] == 2 == fake_youtube.search_calls
    video = first.videos[0]
    assert video.source == "youtube" and video.channel_id and video.published_at
    assert video.thumbnail_url == fake_youtube.thumbnail_url(video.video_id, "mqdefault")


def test_unreachable_endpoint() -> None:
    api = GoogleYouTubeApi("k", "http://127.0.0.1:9/", timeout=2, num_retries=0)
    with pytest.raises(ApiUnreachableError, match="cannot reach"):
        api.search_page("cats", None, 5)
