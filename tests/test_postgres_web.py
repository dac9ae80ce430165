"""The web API, duplicate groups, galleries and `add` of files again, on PostgreSQL."""

from __future__ import annotations

import pytest

from tests.ingest.test_local_add import (
    test_add_refuses_missing_paths_before_writing,
    test_add_stores_embeds_in_batches_and_skips_known,
    test_ingested_bytes_are_kept_in_the_content_addressed_cache,
)
from tests.web.test_web_api import (
    client,
    corpus,
    test_duplicate_groups_are_the_reuploads,
    test_errors_are_json_with_status,
    test_gallery_html_and_sheet,
    test_similar_by_id_and_url,
    test_upload_finds_its_own_photo,
    test_videos_stats_duplicates_page_and_schema,
)

__all__ = [
    "client",
    "corpus",
    "test_add_refuses_missing_paths_before_writing",
    "test_add_stores_embeds_in_batches_and_skips_known",
    "test_duplicate_groups_are_the_reuploads",
    "test_errors_are_json_with_status",
    "test_gallery_html_and_sheet",
    "test_ingested_bytes_are_kept_in_the_content_addressed_cache",
    "test_similar_by_id_and_url",
    "test_upload_finds_its_own_photo",
    "test_videos_stats_duplicates_page_and_schema",
]

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def _on_postgres(pg_env: str) -> str:
    return pg_env
