"""Settings are read once from the environment, with defaults and checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.errors import ConfigError, MissingApiKeyError
from indexer.images.fetch import host_allowed
from indexer.settings import DEFAULT_ALLOWED_HOSTS, DEFAULT_MODEL, Settings


def test_defaults_live_under_home(tmp_path: Path) -> None:
    s = Settings.from_env({"THUMBSEARCH_HOME": str(tmp_path)})
    assert s.home == tmp_path
    assert s.database_url == f"sqlite:///{tmp_path / 'thumbsearch.sqlite3'}"
    assert s.index_dir == tmp_path / "index"
    assert s.youtube_endpoint == "https://youtube.googleapis.com/"
    assert s.thumbnail_url("abcdefghijk") == "https://i.ytimg.com/vi/abcdefghijk/mqdefault.jpg"
    assert s.allowed_hosts == DEFAULT_ALLOWED_HOSTS
    assert s.model == DEFAULT_MODEL


def test_default_home_is_a_per_user_directory() -> None:
    s = Settings.from_env({})
    assert "thumbsearch" in str(s.home)
    assert s.home.is_absolute()


def test_overrides_and_trailing_slash() -> None:
    s = Settings.from_env({
        "THUMBSEARCH_HOME": "/data/ts",
        "THUMBSEARCH_DATABASE_URL": "sqlite:////elsewhere/x.db",
        "THUMBSEARCH_YOUTUBE_ENDPOINT": "http://127.0.0.1:9999",
        "THUMBSEARCH_THUMBNAIL_BASE": "http://127.0.0.1:9998/vi/",
        "THUMBSEARCH_ALLOWED_HOSTS": " Example.org , 127.0.0.1:9000 ",
        "THUMBSEARCH_MODEL": "vgg16",
        "YOUTUBE_API_KEY": "k",
    })
    assert s.database_url == "sqlite:////elsewhere/x.db"
    assert s.youtube_endpoint == "http://127.0.0.1:9999/"
    assert s.thumbnail_base == "http://127.0.0.1:9998/vi"
    assert s.allowed_hosts == ("example.org", "127.0.0.1:9000")
    assert s.image_hosts == ("example.org", "127.0.0.1:9000", "127.0.0.1:9998")
    assert s.model == "vgg16"
    assert s.require_api_key() == "k"


def test_api_key_is_never_in_repr() -> None:
    s = Settings.from_env({"YOUTUBE_API_KEY": "sekrit-key"})
    assert "sekrit" not in repr(s)


def test_missing_key_is_a_clear_error() -> None:
    with pytest.raises(MissingApiKeyError, match="YOUTUBE_API_KEY"):
        Settings.from_env({}).require_api_key()


@pytest.mark.parametrize("name", ["THUMBSEARCH_YOUTUBE_ENDPOINT", "THUMBSEARCH_THUMBNAIL_BASE"])
def test_non_http_urls_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({name: "file:///etc/passwd"})


@pytest.mark.parametrize(("url", "ok"), [
    ("https://i.ytimg.com/vi/x/mqdefault.jpg", True),
    ("http://i.ytimg.com/vi/x/mqdefault.jpg", True),
    ("https://i.ytimg.com:8443/vi/x/mqdefault.jpg", False),
    ("https://evil.example/vi/x.jpg", False),
    ("https://i.ytimg.com.evil.example/x.jpg", False),
    ("file:///etc/passwd", False),
    ("ftp://i.ytimg.com/x.jpg", False),
    ("http://127.0.0.1:9000/x.jpg", True),
    ("http://127.0.0.1:9001/x.jpg", False),
])
def test_host_allowed(url: str, ok: bool) -> None:
    assert host_allowed(url, (*DEFAULT_ALLOWED_HOSTS, "127.0.0.1:9000")) is ok
