"""Typed settings, read once from the environment at the edge."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from indexer.bounds import bounded_float, bounded_int, quote
from indexer.errors import BadSettingError, ConfigError, MissingApiKeyError
from indexer.redact import mask_url

__all__ = [
    "DEFAULT_ALLOWED_HOSTS",
    "DEFAULT_CLAIM_LEASE",
    "DEFAULT_MAX_IDS_FILE_BYTES",
    "DEFAULT_MAX_IMAGE_BYTES",
    "DEFAULT_MAX_QUERIES_FILE_BYTES",
    "DEFAULT_MODEL",
    "DEFAULT_RUNTIME",
    "DEFAULT_SEARCH_QUOTA",
    "DEFAULT_THUMBNAIL_BASE",
    "DEFAULT_UNITS_QUOTA",
    "DEFAULT_WEB_FETCH_TIMEOUT",
    "DEFAULT_YOUTUBE_ENDPOINT",
    "ENV_HELP",
    "PREVIOUS_DEFAULT_MODELS",
    "RUNTIMES",
    "Settings",
    "parse_runtime",
]

DEFAULT_YOUTUBE_ENDPOINT = "https://youtube.googleapis.com/"
DEFAULT_THUMBNAIL_BASE = "https://i.ytimg.com/vi"
DEFAULT_ALLOWED_HOSTS = ("i.ytimg.com", "i1.ytimg.com", "i2.ytimg.com", "i3.ytimg.com",
                         "i4.ytimg.com", "i9.ytimg.com", "img.youtube.com")
# The best choice on the evaluation's hard set within the ingest budget (docs/evaluation.md,
# "Choosing the default model"): letterbox bars and a picture-in-picture's surround cut
# before squashing to 224x224, the last feature map pooled by regions (R-MAC).
DEFAULT_MODEL = "efficientnet-lite0+unbar+inset+rmac"
#: The default model of earlier releases: corpora built with it keep it until re-embedded.
PREVIOUS_DEFAULT_MODELS = ("efficientnet-lite0+unbar",)
DEFAULT_HTTP_TIMEOUT = 20.0
# Seconds `serve` gives the whole download of an unknown video's thumbnail (retries
# included): a page waiting on it is answered 404 past it, not left hanging.
DEFAULT_WEB_FETCH_TIMEOUT = 5.0
DEFAULT_MAX_IMAGE_BYTES = 10 * 1024 * 1024  # a download, an upload or a file for `add`
DEFAULT_MAX_IDS_FILE_BYTES = 256 * 1024 * 1024  # about 20 million ids, one a line
DEFAULT_MAX_QUERIES_FILE_BYTES = 1024 * 1024
_MAX_QUOTA = 1_000_000_000
_MAX_FILE_LIMIT = 1 << 40
DEFAULT_DOWNLOAD_WORKERS = 8
DEFAULT_BATCH_SIZE = 32
DEFAULT_SEARCH_QUOTA = 100  # search.list calls a Pacific day (its own bucket since June 2026)
DEFAULT_UNITS_QUOTA = 10_000  # units a Pacific day for every other method
# Seconds a worker's claim on a query or a video lasts unless renewed (every third of it):
# how long work a killed worker held waits before another worker takes it over.
DEFAULT_CLAIM_LEASE = 120.0
#: Engines that can run the embedding model (indexer.models.runtime explains each one).
RUNTIMES = ("auto", "keras", "function", "xla", "litert", "bf16")
DEFAULT_RUNTIME = "auto"

ENV_HELP = """\
Environment (read once at start):
  THUMBSEARCH_HOME              data directory: database, index, caches
                                (default: the per-user data directory)
  THUMBSEARCH_DATABASE_URL      SQLAlchemy URL (default: sqlite file under home)
  YOUTUBE_API_KEY               YouTube Data API key (ingest, schedule, refresh, add-ids)
  THUMBSEARCH_YOUTUBE_ENDPOINT  API root URL (default https://youtube.googleapis.com/)
  THUMBSEARCH_THUMBNAIL_BASE    thumbnail root (default https://i.ytimg.com/vi)
  THUMBSEARCH_ALLOWED_HOSTS     comma-separated host[:port] images may come from
                                (default: the i.ytimg.com hosts)
  THUMBSEARCH_MODEL             embedding model (default
                                efficientnet-lite0+unbar+inset+rmac; unset, a corpus
                                built with an earlier default keeps it); options in
                                the id: +inset, +rmac, +gem, +flip, ... (see
                                `thumbsearch models`)
  THUMBSEARCH_WEIGHTS_DIR       directory of model weight files (<model>.weights.h5,
                                <model>.pth); see `thumbsearch models`
  THUMBSEARCH_RUNTIME           engine running the model: auto (default: bf16 for
                                batch jobs on a CPU with native bf16, else litert when
                                ai-edge-litert is installed, else function), keras,
                                function, xla, litert or bf16
  THUMBSEARCH_SEARCH_QUOTA      search.list calls a Pacific day (default 100)
  THUMBSEARCH_UNITS_QUOTA       units a Pacific day for other methods (default 10000)
  THUMBSEARCH_CLAIM_LEASE       seconds a worker's claim on a query or video lasts
                                unless renewed; a killed worker's work is taken over
                                after it (default 120)
  THUMBSEARCH_MAX_IMAGE_BYTES   largest image downloaded, uploaded or added
                                (default 10485760)
  THUMBSEARCH_MAX_IDS_FILE_BYTES
                                largest ids file or stdin list (default 268435456)
  THUMBSEARCH_MAX_QUERIES_FILE_BYTES
                                largest queries file (default 1048576)
  THUMBSEARCH_WEB_FETCH_TIMEOUT seconds `serve` waits for an unknown video's thumbnail
                                (the whole download, retries included) before it
                                answers 404 (default 5)
  THUMBSEARCH_WORKER_NAME       this host's name in work claims (default: the host
                                name); processes with the same name must share one
                                process table

Exit codes (every command): 0 done (failed thumbnails are listed, the rest stored);
1 an error stopped it; 2 usage or range error (an option, argument, duration or
numeric setting malformed or out of its range); 3 stopped at the day's API quota."""


def parse_runtime(text: str) -> str:
    """A name from RUNTIMES (case and spaces ignored, empty = auto); else a one-line
    BadSettingError (exit 2)."""
    name = text.strip().lower() or DEFAULT_RUNTIME
    if name not in RUNTIMES:
        raise BadSettingError(
            f"THUMBSEARCH_RUNTIME must be one of {', '.join(RUNTIMES)}, got {quote(text.strip())}")
    return name


def _lease(env: Mapping[str, str]) -> float:
    text = env.get("THUMBSEARCH_CLAIM_LEASE", "").strip()
    if not text:
        return DEFAULT_CLAIM_LEASE
    return bounded_float(text, "THUMBSEARCH_CLAIM_LEASE", 0.5, 86_400)


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name, "").strip()
    return bounded_float(text, name, 0.1, 3600) if text else default


def _parsable_url(name: str, url: str) -> None:
    """ConfigError for a URL that cannot be parsed at all: an unclosed IPv6 host, a bad port."""
    try:
        urlsplit(url).port  # noqa: B018 - parsing the port is what raises for a bad one
    except ValueError as exc:
        # The URL itself is not repeated: it may carry credentials.
        raise ConfigError(f"{name} is not a valid URL: {str(exc)[:80]}") from None


def _optional_path(text: str) -> Path | None:
    return Path(text.strip()).expanduser() if text.strip() else None


def _default_home() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("thumbsearch", appauthor=False))


def _env_int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = env.get(name, "").strip()
    return bounded_int(text, name, low, high) if text else default


@dataclass(frozen=True)
class Settings:
    """Everything thumbsearch reads from its environment."""

    home: Path
    database_url: str
    youtube_api_key: str | None = field(default=None, repr=False)
    youtube_endpoint: str = DEFAULT_YOUTUBE_ENDPOINT
    thumbnail_base: str = DEFAULT_THUMBNAIL_BASE
    allowed_hosts: tuple[str, ...] = DEFAULT_ALLOWED_HOSTS
    model: str = DEFAULT_MODEL
    # True when the model was named (THUMBSEARCH_MODEL, --model); else a corpus built with
    # an earlier default keeps its model (indexer.service.build_service).
    model_chosen: bool = False
    http_timeout: float = DEFAULT_HTTP_TIMEOUT
    max_image_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    max_ids_file_bytes: int = DEFAULT_MAX_IDS_FILE_BYTES
    max_queries_file_bytes: int = DEFAULT_MAX_QUERIES_FILE_BYTES
    download_workers: int = DEFAULT_DOWNLOAD_WORKERS
    batch_size: int = DEFAULT_BATCH_SIZE
    weights_dir: Path | None = None
    search_quota: int = DEFAULT_SEARCH_QUOTA
    units_quota: int = DEFAULT_UNITS_QUOTA
    runtime: str = DEFAULT_RUNTIME
    claim_lease: float = DEFAULT_CLAIM_LEASE
    worker_name: str | None = None
    web_fetch_timeout: float = DEFAULT_WEB_FETCH_TIMEOUT

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``environ`` (default ``os.environ``)."""
        env = os.environ if environ is None else environ
        home_text = env.get("THUMBSEARCH_HOME", "").strip()
        home = Path(home_text).expanduser() if home_text else _default_home()
        database_url = env.get("THUMBSEARCH_DATABASE_URL", "").strip() or (
            f"sqlite:///{home / 'thumbsearch.sqlite3'}"
        )
        endpoint = env.get("THUMBSEARCH_YOUTUBE_ENDPOINT", "").strip() or DEFAULT_YOUTUBE_ENDPOINT
        if not endpoint.endswith("/"):
            endpoint += "/"  # googleapiclient joins paths onto it
        thumb_base = (env.get("THUMBSEARCH_THUMBNAIL_BASE", "").strip()
                      or DEFAULT_THUMBNAIL_BASE).rstrip("/")
        _parsable_url("THUMBSEARCH_YOUTUBE_ENDPOINT", endpoint)
        _parsable_url("THUMBSEARCH_THUMBNAIL_BASE", thumb_base)
        for name, url in (("THUMBSEARCH_YOUTUBE_ENDPOINT", endpoint),
                          ("THUMBSEARCH_THUMBNAIL_BASE", thumb_base)):
            if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
                raise ConfigError(f"{name} must be an http(s) URL, got {quote(mask_url(url))}")
        hosts_text = env.get("THUMBSEARCH_ALLOWED_HOSTS", "").strip()
        allowed = (tuple(h.strip().lower() for h in hosts_text.split(",") if h.strip())
                   if hosts_text else DEFAULT_ALLOWED_HOSTS)
        return cls(
            home=home,
            database_url=database_url,
            youtube_api_key=env.get("YOUTUBE_API_KEY", "").strip() or None,
            youtube_endpoint=endpoint,
            thumbnail_base=thumb_base,
            allowed_hosts=allowed,
            model=env.get("THUMBSEARCH_MODEL", "").strip() or DEFAULT_MODEL,
            model_chosen=bool(env.get("THUMBSEARCH_MODEL", "").strip()),
            weights_dir=_optional_path(env.get("THUMBSEARCH_WEIGHTS_DIR", "")),
            search_quota=_env_int(env, "THUMBSEARCH_SEARCH_QUOTA", DEFAULT_SEARCH_QUOTA,
                                  0, _MAX_QUOTA),
            units_quota=_env_int(env, "THUMBSEARCH_UNITS_QUOTA", DEFAULT_UNITS_QUOTA,
                                 0, _MAX_QUOTA),
            max_image_bytes=_env_int(env, "THUMBSEARCH_MAX_IMAGE_BYTES",
                                     DEFAULT_MAX_IMAGE_BYTES, 1024, _MAX_FILE_LIMIT),
            max_ids_file_bytes=_env_int(env, "THUMBSEARCH_MAX_IDS_FILE_BYTES",
                                        DEFAULT_MAX_IDS_FILE_BYTES, 1024, _MAX_FILE_LIMIT),
            max_queries_file_bytes=_env_int(env, "THUMBSEARCH_MAX_QUERIES_FILE_BYTES",
                                            DEFAULT_MAX_QUERIES_FILE_BYTES, 1024,
                                            _MAX_FILE_LIMIT),
            runtime=parse_runtime(env.get("THUMBSEARCH_RUNTIME", "")),
            claim_lease=_lease(env),
            worker_name=env.get("THUMBSEARCH_WORKER_NAME", "").strip() or None,
            web_fetch_timeout=_seconds(env, "THUMBSEARCH_WEB_FETCH_TIMEOUT",
                                       DEFAULT_WEB_FETCH_TIMEOUT),
        )

    def with_model(self, model_id: str) -> Settings:
        """These settings with ``model_id`` named as the model (a ``--model`` option)."""
        return dataclasses.replace(self, model=model_id, model_chosen=True)

    @property
    def index_dir(self) -> Path:
        """Directory holding the FAISS snapshots, one per model."""
        return self.home / "index"

    def require_api_key(self) -> str:
        """Return the API key or raise a clear error when it is not set."""
        if not self.youtube_api_key:
            raise MissingApiKeyError(
                "YOUTUBE_API_KEY is not set: create a key for the YouTube Data API v3 "
                "and export YOUTUBE_API_KEY=..."
            )
        return self.youtube_api_key

    @property
    def model_cache_dir(self) -> Path:
        """Directory of converted models (``.tflite`` files for the LiteRT runtime)."""
        return self.home / "models"

    @property
    def thumbnail_cache_dir(self) -> Path:
        """Directory of the content-addressed thumbnail cache."""
        return self.home / "thumbnails"

    @property
    def image_hosts(self) -> tuple[str, ...]:
        """Hosts images may be fetched from: the allowed list plus the thumbnail host."""
        base = urlsplit(self.thumbnail_base)
        host = (base.hostname or "").lower()
        own = f"{host}:{base.port}" if base.port else host
        return self.allowed_hosts if own in self.allowed_hosts else (*self.allowed_hosts, own)

    def thumbnail_url(self, video_id: str, name: str = "mqdefault") -> str:
        """URL of a video's thumbnail of the given size name."""
        return f"{self.thumbnail_base}/{video_id}/{name}.jpg"
