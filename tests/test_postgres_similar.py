"""`similar --ids-file` and single lookups again, on PostgreSQL."""

from __future__ import annotations

import pytest

from tests.cli.test_similar_batch import (
    corpus,
    service,
    test_batch_is_one_index_search,
    test_batch_of_nothing_stored,
    test_batch_on_an_empty_corpus_is_an_error,
    test_batched_answers_equal_single_answers,
    test_ids_file_json_mixes_answers_and_per_line_errors,
    test_ids_file_on_an_empty_corpus,
    test_ids_file_table,
)

__all__ = [
    "corpus",
    "service",
    "test_batch_is_one_index_search",
    "test_batch_of_nothing_stored",
    "test_batch_on_an_empty_corpus_is_an_error",
    "test_batched_answers_equal_single_answers",
    "test_ids_file_json_mixes_answers_and_per_line_errors",
    "test_ids_file_on_an_empty_corpus",
    "test_ids_file_table",
]

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def _on_postgres(pg_env: str) -> str:
    return pg_env
