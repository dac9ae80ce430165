"""The add-ids suite again, on PostgreSQL (a database of its own for each test)."""

from __future__ import annotations

import pytest

from tests.ingest.test_add_ids import (
    clock,
    services,
    test_a_missing_api_key_fails_before_anything_is_written,
    test_a_run_that_died_is_resumed_without_fetching_anything_twice,
    test_a_second_writer_is_refused,
    test_a_stored_video_videos_list_leaves_out_is_gone_and_kept,
    test_ids_are_stored_embedded_indexed_and_given_details,
    test_missing_thumbnails_and_ids_youtube_dropped_are_recorded_as_gone,
    test_the_units_quota_stops_details_not_thumbnails_and_the_next_day_finishes,
    test_youtube_answering_quota_exceeded_stops_details_for_the_day,
)

__all__ = [
    "clock",
    "services",
    "test_a_missing_api_key_fails_before_anything_is_written",
    "test_a_run_that_died_is_resumed_without_fetching_anything_twice",
    "test_a_second_writer_is_refused",
    "test_a_stored_video_videos_list_leaves_out_is_gone_and_kept",
    "test_ids_are_stored_embedded_indexed_and_given_details",
    "test_missing_thumbnails_and_ids_youtube_dropped_are_recorded_as_gone",
    "test_the_units_quota_stops_details_not_thumbnails_and_the_next_day_finishes",
    "test_youtube_answering_quota_exceeded_stops_details_for_the_day",
]

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def _on_postgres(pg_env: str) -> str:
    return pg_env
