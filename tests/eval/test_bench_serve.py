"""The machinery of ``bench/serve.py``: a real server on loopback loaded by Debian's wrk."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bench.serve import LUA, build_corpus, measure, run_wrk, serving


@pytest.fixture
def wrk() -> None:
    """Skip without wrk, except in CI (``CI=true``), where a missing install must show."""
    if shutil.which("wrk") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("wrk is not installed (.ci/run installs Debian's wrk)")
        pytest.skip("wrk is not installed (Debian: apt-get install wrk)")


@pytest.mark.usefixtures("wrk")
def test_wrk_figures_are_read_and_errors_refused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    ids, index = build_corpus(home, 400)
    assert index["type"] == "ivf" and len(ids) == 400
    script = tmp_path / "load.lua"
    script.write_text(LUA, encoding="utf-8")
    stored = tmp_path / "ids.txt"
    stored.write_text("\n".join(ids[:50]) + "\n", encoding="utf-8")
    malformed = tmp_path / "bad.txt"
    malformed.write_text("not%20an%20id\n", encoding="utf-8")
    with serving(home) as (url, _pid):
        figures = run_wrk(url, "ids", stored, 2, 1.0, script)
        with pytest.raises(RuntimeError, match="non_2xx"):
            run_wrk(url, "ids", malformed, 1, 1.0, script)
    assert figures["connections"] == 2 and figures["requests"] > 0
    assert figures["non_2xx"] == 0 and figures["socket_errors"] == 0
    assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]
    assert figures["requests_s"] == pytest.approx(figures["requests"] / figures["seconds"],
                                                  rel=0.05)


@pytest.mark.large
@pytest.mark.usefixtures("wrk")
def test_a_small_run_gives_every_figure_the_targets_need() -> None:
    figures = measure(size=2_000, seconds=1.0)
    assert set(figures["ids"]) == {"1", "4", "16"} and set(figures["upload"]) == {"1", "4"}
    assert figures["library_1_thread_s"] > 0 and figures["model_batch_1_img_s"] > 0
    assert figures["serve_vs_library_16"] > 0 and figures["serve_p99_ms_16"] > 0
    assert all(run["requests"] > 0 for run in figures["upload"].values())
