"""Nobody in: allowed hosts only (after redirects too), http(s) only, the key never leaks,
no unpickling of untrusted data, safe file permissions, SQL only through bound parameters."""

from __future__ import annotations

import ast
import dataclasses
import json
import logging
import stat
import traceback
from pathlib import Path

import pytest
from typer.testing import CliRunner

from indexer.errors import FetchError, HostNotAllowedError, ThumbsearchError
from indexer.images.fetch import HttpImageFetcher
from indexer.ingest.queries import ingest_queries
from indexer.records import VideoMeta
from indexer.service import build_service
from indexer.settings import Settings
from search.cli import app
from tests.fakes.embedder import TinyEmbedder
from tests.fakes.hostile import Behaviour, HostileServer
from tests.fakes.youtube import FakeYouTube, photo_catalogue, placeholder_jpeg

ROOT = Path(__file__).resolve().parents[2]
SECRET = "AIzaSy-SECRET-do-not-leak-0123456789"
runner = CliRunner()


def _image() -> bytes:
    return placeholder_jpeg()


@pytest.mark.parametrize("target", [
    "http://127.0.0.1:{other}/x.jpg",
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://[::1]:{other}/x.jpg",
    "http://localhost:{other}/x.jpg",
    "http://i.ytimg.com@127.0.0.1:{other}/x.jpg",
    "http://10.0.0.1/x.jpg",
    "file:///etc/passwd",
    "ftp://127.0.0.1/x.jpg",
    "data:image/jpeg;base64,AAAA",
    "gopher://127.0.0.1:{other}/",
])
def test_a_redirect_off_the_allowed_hosts_is_refused(target: str) -> None:
    with HostileServer(lambda path: Behaviour("ok", _image())) as other, \
            HostileServer(lambda path: Behaviour(
                "redirect", status=302, location=target.format(other=other.port))) as server:
        fetcher = HttpImageFetcher([server.host], timeout=2, retries=0)
        with pytest.raises(HostNotAllowedError):
            fetcher.fetch(server.url("/vi/aaaaaaaaaaa/mqdefault.jpg"))
        assert other.requests == []  # never contacted


def test_redirects_on_the_allowed_host_are_followed_but_bounded() -> None:
    def route(path: str) -> Behaviour:
        if path.startswith("/hop"):
            n = int(path[4:])
            return Behaviour("redirect", status=301, location=f"/hop{n + 1}")
        return Behaviour("redirect", status=302, location="/final") if path == "/start" \
            else Behaviour("ok", _image())

    with HostileServer(route) as server:
        fetcher = HttpImageFetcher([server.host], timeout=2, retries=0)
        assert fetcher.fetch(server.url("/start")) == _image()
        with pytest.raises(FetchError, match="redirects"):
            fetcher.fetch(server.url("/hop0"))


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://i.ytimg.com/x.jpg",
                                 "data:image/png;base64,AAAA", "gopher://i.ytimg.com/",
                                 "javascript:alert(1)", "//i.ytimg.com/x.jpg", "i.ytimg.com/x"])
def test_only_http_urls_are_fetched(url: str) -> None:
    with pytest.raises(HostNotAllowedError):
        HttpImageFetcher(["i.ytimg.com"]).check(url)


def _leaks(text: str) -> bool:
    return SECRET in text


def test_the_api_key_never_appears_anywhere(monkeypatch: pytest.MonkeyPatch,
                                           caplog: pytest.LogCaptureFixture,
                                           isolated_env: Path) -> None:
    videos, searches = photo_catalogue()
    caplog.set_level(logging.DEBUG)  # what a user turning on debug logging would see
    with FakeYouTube(videos, searches, api_key=SECRET) as fake:
        monkeypatch.setenv("YOUTUBE_API_KEY", SECRET)
        monkeypatch.setenv("THUMBSEARCH_YOUTUBE_ENDPOINT", fake.api_endpoint)
        monkeypatch.setenv("THUMBSEARCH_THUMBNAIL_BASE", fake.thumbnail_base)
        monkeypatch.setenv("THUMBSEARCH_ALLOWED_HOSTS", fake.thumbnail_host)
        settings = Settings.from_env()
        assert SECRET not in repr(settings)
        service = build_service(settings, embedder=TinyEmbedder(), sleep=lambda s: None)
        errors: list[BaseException] = []
        try:
            summary = ingest_queries(service, ["cats", "space"])
            assert summary.new > 0
            # Errors after the retries: 500s, a rate limit, then a quota stop.
            fake.inject("/youtube/v3/search", 500, times=None)
            try:
                ingest_queries(service, ["dogs"])
            except ThumbsearchError as exc:
                errors.append(exc)
            fake.clear_injections()
            fake.inject("/youtube/v3/search", 403, "quotaExceeded")
            stopped = ingest_queries(service, ["travel"])
            assert stopped.stopped
            reports = [json.dumps(stopped.record()), json.dumps(summary.record())]
        finally:
            service.close()
        # The API unreachable: its error message and traceback.
        monkeypatch.setenv("THUMBSEARCH_YOUTUBE_ENDPOINT", "http://127.0.0.1:9/")
        down = build_service(dataclasses.replace(Settings.from_env(),
                                                 database_url=f"sqlite:///{isolated_env}/o.db"),
                             embedder=TinyEmbedder(), sleep=lambda s: None)
        try:
            ingest_queries(down, ["cats"])
        except ThumbsearchError as exc:
            errors.append(exc)
        finally:
            down.close()
        assert len(errors) == 2
        outputs = [caplog.text, *reports]
        for exc in errors:
            outputs.append(str(exc))
            outputs.append("".join(traceback.format_exception(exc)))
        monkeypatch.setenv("THUMBSEARCH_YOUTUBE_ENDPOINT", fake.api_endpoint)
        for args in (["--help"], ["ingest", "--help"], ["stats", "--json"], ["runs"],
                     ["runs", "--json"], ["ingest", "cats", "--json"]):
            result = runner.invoke(app, args)
            outputs.append(result.output)
        for name in ("schedule", "refresh", "similar", "add", "doctor"):
            outputs.append(runner.invoke(app, [name, "--help"]).output)
    for text in outputs:
        assert not _leaks(text), text[:2000]
    files = [p for p in isolated_env.rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite3" for p in files)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path


def test_no_unpickling_of_untrusted_data_anywhere() -> None:
    """Only the restricted unpickler of torch_legacy may touch pickle; np.load never pickles."""
    offenders = []
    for path in sorted([*ROOT.glob("indexer/**/*.py"), *ROOT.glob("search/**/*.py"),
                        *ROOT.glob("migrations/**/*.py")]):
        tree = ast.parse(path.read_text(), str(path))
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", "") or ""]
                risky = {"pickle", "dill", "joblib", "shelve", "marshal", "cloudpickle", "torch"}
                if any(n.split(".")[0] in risky for n in names) and \
                        rel != "indexer/models/torch_legacy.py":
                    offenders.append(f"{rel}:{node.lineno} imports {names}")
            if isinstance(node, ast.Call):
                func = ast.unparse(node.func)
                if func.endswith(("np.load", "numpy.load")):
                    kw = {k.arg: ast.unparse(k.value) for k in node.keywords}
                    if kw.get("allow_pickle") != "False":
                        offenders.append(f"{rel}:{node.lineno} np.load without allow_pickle=False")
                if func.endswith(("load_model", "eval", "exec")) and func != "self.eval":
                    offenders.append(f"{rel}:{node.lineno} calls {func}")
    assert offenders == []
    legacy = (ROOT / "indexer/models/torch_legacy.py").read_text()
    assert "class _RestrictedUnpickler(pickle.Unpickler)" in legacy
    assert "def find_class" in legacy


def test_sql_goes_through_bound_parameters_only(isolated_env: Path) -> None:
    offenders = []
    for path in sorted([*ROOT.glob("indexer/**/*.py"), *ROOT.glob("search/**/*.py")]):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = ast.unparse(node.func)
                if func.endswith(("exec_driver_sql", "executescript", "sqlalchemy.text")) or \
                        func in ("text", "sa.text"):
                    offenders.append(f"{path.name}:{node.lineno} {func}")
                # A constant string (the PRAGMAs) cannot carry input; built strings could.
                # An f-string may only splice in a run of "?" placeholders (``marks``).
                first = node.args[0] if node.args else None
                if func.endswith(".execute") and (isinstance(first, ast.BinOp) or (isinstance(
                        first, ast.JoinedStr) and any(
                        ast.unparse(v.value) != "marks" for v in first.values
                        if isinstance(v, ast.FormattedValue)))):
                    offenders.append(f"{path.name}:{node.lineno} raw SQL string")
    assert offenders == []
    # And behaviourally: hostile text is stored verbatim, nothing else happens.
    with build_service(Settings.from_env(), embedder=TinyEmbedder()) as service:
        service.prepare_for_writing()
        evil = "x'); DROP TABLE videos; --"
        import numpy as np

        service.store.add_embedded([VideoMeta("aaaaaaaaaaa", "t", title=evil, channel_title=evil)],
                                   np.ones((1, 192), np.float32), "tiny-test")
        qid = service.store.query_id(evil + '" OR 1=1 --')
        assert service.store.query_id(evil + '" OR 1=1 --') == qid
        assert service.store.get_video("aaaaaaaaaaa").title == evil  # type: ignore[union-attr]
        assert service.store.counts("tiny-test") == {"videos": 1, "vectors": 1, "queries": 1}


def test_files_are_written_with_safe_permissions(youtube_env: FakeYouTube,
                                                 isolated_env: Path) -> None:
    with build_service(Settings.from_env(), embedder=TinyEmbedder()) as service:
        assert ingest_queries(service, ["cats"]).new > 0
    paths = [isolated_env, *isolated_env.rglob("*")]
    assert len(paths) > 5
    for path in paths:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert not mode & stat.S_IWOTH, f"{path} is world-writable ({mode:o})"
        assert not mode & stat.S_IWGRP, f"{path} is group-writable ({mode:o})"
    assert not stat.S_IMODE(isolated_env.stat().st_mode) & 0o077
