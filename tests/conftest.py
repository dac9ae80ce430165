"""Shared fixtures: an isolated environment per test, settings into tmp_path, the backend."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.settings import Settings
from tests.fakes.corpus import FIGURES_ENV

pytest_plugins = ["tests.fakes.fixtures", "tests.pg"]

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist runs a worker per core: each keeps OpenMP (FAISS) to one thread, so that
    # the workers' thread pools do not spin against each other. Read when FAISS loads.
    os.environ.setdefault("OMP_NUM_THREADS", "1")

ENV_NAMES = (
    "THUMBSEARCH_HOME", "THUMBSEARCH_DATABASE_URL", "YOUTUBE_API_KEY",
    "THUMBSEARCH_YOUTUBE_ENDPOINT", "THUMBSEARCH_THUMBNAIL_BASE", "THUMBSEARCH_ALLOWED_HOSTS",
    "THUMBSEARCH_MODEL", "THUMBSEARCH_SEARCH_QUOTA", "THUMBSEARCH_UNITS_QUOTA",
    "THUMBSEARCH_WEIGHTS_DIR", "THUMBSEARCH_RUNTIME", "THUMBSEARCH_CLAIM_LEASE",
    "THUMBSEARCH_WORKER_NAME", "THUMBSEARCH_MAX_IMAGE_BYTES", "THUMBSEARCH_MAX_IDS_FILE_BYTES",
    "THUMBSEARCH_MAX_QUERIES_FILE_BYTES", "THUMBSEARCH_WEB_FETCH_TIMEOUT",
)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test gets its own data directory and none of the caller's settings (the file
    the README figures go to is the harness's, not a setting: it is kept)."""
    for name in {*ENV_NAMES, *(n for n in os.environ if n.startswith("THUMBSEARCH_"))} - {
            FIGURES_ENV}:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("THUMBSEARCH_HOME", str(home))
    yield home


@pytest.fixture
def settings(isolated_env: Path) -> Settings:
    """Settings read from the isolated environment."""
    return Settings.from_env()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, isolated_env: Path,
            monkeypatch: pytest.MonkeyPatch) -> str:
    """Each database the product runs on, in turn: the home's SQLite file, then a PostgreSQL
    database of its own (tests/pg.py) named by THUMBSEARCH_DATABASE_URL."""
    if request.param == "postgres":
        monkeypatch.setenv("THUMBSEARCH_DATABASE_URL", request.getfixturevalue("pg_url"))
    return str(request.param)
