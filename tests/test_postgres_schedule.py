"""The scheduling suite again, on PostgreSQL: quota ledger, cursors, refresh, runs, the lock."""

from __future__ import annotations

import pytest

from tests.ingest.test_schedule import (
    clock,
    make_service,
    sleeps,
    test_a_second_writer_exits_or_waits_and_a_crash_frees_the_lock,
    test_concurrent_charges_never_overspend,
    test_fair_sharing_by_priority_then_round_robin,
    test_ledger_charges_atomically_per_pacific_day,
    test_new_videos_get_their_details_in_batches_of_50,
    test_quota_exceeded_bad_key_and_bad_request_are_not_retried,
    test_quota_message_says_when_it_resets,
    test_quota_stop_resumes_without_repeating_pages_across_midnight,
    test_refresh_stops_at_the_units_quota,
    test_refresh_updates_old_rows_and_prune_removes_gone_videos,
    test_schedule_loop_runs_batches_until_stopped,
    test_transient_errors_back_off_and_each_attempt_is_charged,
)

__all__ = [
    "clock",
    "make_service",
    "sleeps",
    "test_a_second_writer_exits_or_waits_and_a_crash_frees_the_lock",
    "test_concurrent_charges_never_overspend",
    "test_fair_sharing_by_priority_then_round_robin",
    "test_ledger_charges_atomically_per_pacific_day",
    "test_new_videos_get_their_details_in_batches_of_50",
    "test_quota_exceeded_bad_key_and_bad_request_are_not_retried",
    "test_quota_message_says_when_it_resets",
    "test_quota_stop_resumes_without_repeating_pages_across_midnight",
    "test_refresh_stops_at_the_units_quota",
    "test_refresh_updates_old_rows_and_prune_removes_gone_videos",
    "test_schedule_loop_runs_batches_until_stopped",
    "test_transient_errors_back_off_and_each_attempt_is_charged",
]

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def _on_postgres(pg_env: str) -> str:
    return pg_env
