"""Files a user names: bad files in a folder, .info.json fields, queries and ids files."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from indexer.errors import InputError, InputFileError, QueriesFileError
from indexer.ingest.local import INFO_JSON_MAX_BYTES, add_paths
from indexer.ingest.summary import IngestSummary
from indexer.service import Service, build_service
from indexer.settings import Settings
from indexer.youtube.queryfile import load_queries_file, parse_queries
from search.cli import app
from search.cli.output import finish_ingest
from search.idlist import read_id_list
from tests.fakes.corpus import seed_corpus
from tests.fakes.embedder import TinyEmbedder

runner = CliRunner()
VIDEO = "dQw4w9WgXcQ"


def _photo(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, size=(18, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).resize((320, 180)).save(path, "JPEG", quality=95)
    return path


def _sparse(path: Path, size: int) -> Path:
    with path.open("wb") as handle:
        handle.truncate(size)  # costs no disk
    return path


@pytest.fixture
def service(settings: Settings) -> Iterator[Service]:
    with build_service(settings, embedder=TinyEmbedder()) as built:
        yield built


# -- add: a bad single file inside a folder is skipped and counted ---------------------


def test_add_of_a_folder_skips_bad_files_with_their_reasons_and_adds_the_rest(
        tmp_path: Path, service: Service, settings: Settings) -> None:
    folder = tmp_path / "thumbs"
    folder.mkdir()
    _photo(folder / "good.jpg", 0)
    _photo(folder / f"Clip [{VIDEO}].jpg", 1)
    (folder / f"Clip [{VIDEO}].info.json").write_text(
        '{"title": "The clip", "timestamp": 1e20, "upload_date": "20240131"}')
    _sparse(folder / "huge.jpg", 3 * settings.max_image_bytes)
    _sparse(folder / "Huge too [abcdefghijk].jpg", 3 * settings.max_image_bytes)
    os.mkfifo(folder / "pipe.jpg")
    (folder / "zero.png").symlink_to("/dev/zero")
    summary = add_paths(service, [folder])
    assert summary.new == 2
    reasons = {Path(f.video_id).name: f.reason for f in summary.failed}
    assert sorted(reasons) == ["abcdefghijk", "huge.jpg", "pipe.jpg", "zero.png"]
    assert "larger than 10.0 MiB" in reasons["abcdefghijk"]  # refused as it is read
    assert "larger than 10.0 MiB" in reasons["huge.jpg"]  # refused as it is hashed
    assert "THUMBSEARCH_MAX_IMAGE_BYTES" in reasons["huge.jpg"]
    assert "not a regular file" in reasons["pipe.jpg"]
    assert "not a regular file" in reasons["zero.png"]
    assert len(summary.ignored_fields) == 1 and "timestamp" in summary.ignored_fields[0]
    stored = service.store.get_video(VIDEO)
    assert stored is not None and stored.title == "The clip"
    assert stored.published_at is not None and stored.published_at.year == 2024


@pytest.mark.parametrize("kind", ["huge", "fifo", "device"])
def test_a_bad_file_named_on_the_command_line_is_refused_before_anything_is_written(
        tmp_path: Path, service: Service, settings: Settings, kind: str) -> None:
    good = _photo(tmp_path / "good.jpg", 0)
    if kind == "huge":
        bad = _sparse(tmp_path / "huge.jpg", 3 * settings.max_image_bytes)
    elif kind == "fifo":
        bad = tmp_path / "pipe.jpg"
        os.mkfifo(bad)
    else:
        bad = Path("/dev/zero")
    with pytest.raises(InputFileError, match=r"larger than|not a regular file"):
        add_paths(service, [good, bad])
    assert not service.store.exists()


def test_a_hash_stops_at_the_limit_of_a_file_that_grows(tmp_path: Path,
                                                        settings: Settings) -> None:
    import dataclasses

    small = dataclasses.replace(settings, max_image_bytes=1000)
    folder = tmp_path / "in"
    folder.mkdir()
    _photo(folder / "photo.jpg", 3)  # a few kB: over a 1000-byte limit
    with build_service(small, embedder=TinyEmbedder()) as built:
        summary = add_paths(built, [folder])
    assert summary.new == 0
    assert "larger than 1000 bytes" in summary.failed[0].reason


# -- .info.json fields are read one by one --------------------------------------------

GOOD: dict[str, Any] = {"id": VIDEO, "title": "Real title", "channel": "Chan",
                        "upload_date": "20240131"}

# (case, the .info.json text, fields ignored, title stored, year published)
INFO_CASES: list[tuple[str, str, int, str, int | None]] = [
    ("timestamp 1e20", json.dumps({**GOOD, "timestamp": 1e20}), 1, "Real title", 2024),
    ("timestamp NaN", json.dumps({**GOOD, "timestamp": float("nan")}), 1, "Real title", 2024),
    ("timestamp Infinity", json.dumps({**GOOD, "timestamp": float("inf")}), 1, "Real title",
     2024),
    ("timestamp -1e15", json.dumps({**GOOD, "timestamp": -1e15}), 1, "Real title", 2024),
    ("timestamp true", json.dumps({**GOOD, "timestamp": True}), 1, "Real title", 2024),
    ("timestamp huge int", '{"title": "Real title", "timestamp": ' + "9" * 400 + "}", 1,
     "Real title", None),
    ("release_timestamp 1e20", json.dumps({**GOOD, "release_timestamp": 1e20}), 1,
     "Real title", 2024),
    ("good timestamp", json.dumps({**GOOD, "timestamp": 1_600_000_000}), 0, "Real title",
     2020),
    ("title a list", json.dumps({**GOOD, "title": ["a", "b"]}), 1, "Clip", 2024),
    ("channel an object", json.dumps({**GOOD, "channel": {"a": 1}}), 1, "Real title", 2024),
    ("upload_date month 13", json.dumps({**GOOD, "upload_date": "20241331"}), 1, "Real title",
     None),
    ("upload_date with dashes", json.dumps({**GOOD, "upload_date": "2024-01-31"}), 1,
     "Real title", None),
    ("upload_date a number", json.dumps({**GOOD, "upload_date": 20240131}), 1, "Real title",
     None),
    ("id a number", json.dumps({**GOOD, "id": 5}), 1, "Real title", 2024),
    ("id 5000 characters", json.dumps({**GOOD, "id": "x" * 5000}), 1, "Real title", 2024),
    ("thumbnail javascript:", json.dumps({**GOOD, "thumbnail": "javascript:alert(1)"}), 1,
     "Real title", 2024),
    ("three bad fields", json.dumps({**GOOD, "timestamp": 1e20, "title": 7, "channel": []}), 3,
     "Clip", 2024),
    ("not an object", "[1, 2, 3]", 1, "Clip", None),
    ("broken JSON", '{"title": "Real', 1, "Clip", None),
    ("nested 100000 deep", "[" * 100_000, 1, "Clip", None),
    ("not UTF-8", '{"title": "\xff"}', 1, "Clip", None),
]


@pytest.mark.parametrize(("case", "text", "ignored", "title", "year"), INFO_CASES,
                         ids=[c[0] for c in INFO_CASES])
def test_a_bad_info_json_field_is_ignored_and_counted_and_the_image_added(
        tmp_path: Path, service: Service, case: str, text: str, ignored: int, title: str,
        year: int | None) -> None:
    image = _photo(tmp_path / f"Clip [{VIDEO}].jpg", 0)
    info = tmp_path / f"Clip [{VIDEO}].info.json"
    if case == "not UTF-8":
        info.write_bytes(text.encode("latin-1"))
    else:
        info.write_text(text)
    summary = add_paths(service, [image])
    assert (summary.new, summary.failed) == (1, [])
    assert len(summary.ignored_fields) == ignored, summary.ignored_fields
    assert all(len(line) < 300 for line in summary.ignored_fields)
    stored = service.store.get_video(VIDEO)
    assert stored is not None and stored.title == title
    assert (stored.published_at.year if stored.published_at else None) == year


@pytest.mark.parametrize("kind", ["huge", "fifo"])
def test_an_info_json_that_is_too_large_or_not_a_file_is_ignored(
        tmp_path: Path, service: Service, kind: str) -> None:
    image = _photo(tmp_path / f"Clip [{VIDEO}].jpg", 0)
    info = tmp_path / f"Clip [{VIDEO}].info.json"
    if kind == "huge":
        _sparse(info, 3 * INFO_JSON_MAX_BYTES)
    else:
        os.mkfifo(info)
    summary = add_paths(service, [image])
    assert summary.new == 1
    assert len(summary.ignored_fields) == 1
    assert ("larger than" if kind == "huge" else "not a regular file") in (
        summary.ignored_fields[0])


def test_the_add_summary_names_the_ignored_fields(capsys: pytest.CaptureFixture[str]) -> None:
    summary = IngestSummary(new=1, ignored_fields=["a.info.json: timestamp: x",
                                                   "a.info.json: title: y"])
    finish_ingest(summary, as_json=False)
    out = capsys.readouterr().out
    assert "ignored 2 bad .info.json field(s)" in out
    finish_ingest(summary, as_json=True)
    assert json.loads(capsys.readouterr().out)["ignored_fields"] == summary.ignored_fields


# -- queries files ----------------------------------------------------------------------

NESTED = "[[queries]]\nq = \"cats\"\npages = " + "[" * 5000 + "]" * 5000 + "\n"

QUERIES_CASES: list[tuple[str, str, str]] = [
    ("nested 5000 arrays", NESTED, "nested"),
    ("nested 5000 tables", "a = " + "{b = " * 5000 + "1" + "}" * 5000, "nested"),
    ("published_within 10^20 days", '[[queries]]\nq = "cats"\n'
     'published_within = "99999999999999999999d"', "published_within"),
    ("published_within 10^13 weeks", '[[queries]]\nq = "cats"\n'
     'published_within = "9999999999999w"', "published_within"),
    ("a 5000-digit integer", '[[queries]]\nq = "cats"\npriority = ' + "9" * 5000, "integer"),
    ("priority 10^20", '[[queries]]\nq = "cats"\npriority = 99999999999999999999', "priority"),
]


@pytest.mark.parametrize(("case", "text", "words"), QUERIES_CASES,
                         ids=[c[0] for c in QUERIES_CASES])
def test_a_hostile_queries_file_is_one_clear_error(tmp_path: Path, case: str, text: str,
                                                   words: str) -> None:
    with pytest.raises(QueriesFileError, match=words) as caught:
        parse_queries(text)
    assert len(str(caught.value)) < 300
    path = tmp_path / "queries.toml"
    path.write_text(text)
    result = runner.invoke(app, ["ingest", "--queries-file", str(path)])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == 1, result.output[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output[-2000:]
    assert "Traceback" not in result.output


def test_a_queries_file_over_its_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "queries.toml"
    path.write_text('[[queries]]\nq = "cats"\n' + "# padding\n" * 200)
    with pytest.raises(QueriesFileError, match="larger than 100 bytes"):
        load_queries_file(path, max_bytes=100)
    assert load_queries_file(path)[0].q == "cats"


# -- ids files --------------------------------------------------------------------------


def test_a_long_line_of_an_ids_file_is_a_bad_line_quoted_short(tmp_path: Path,
                                                               isolated_env: Path) -> None:
    with build_service(Settings.from_env()) as built:
        stored = seed_corpus(built, 3)
    path = tmp_path / "ids.txt"
    path.write_text(f"{stored[0]}\n" + "x" * 5_000_000 + "\n#" + "y" * 5_000_000
                    + f"\n{stored[1]}\n")
    listed = read_id_list(str(path))
    assert [(e.line, e.video_id) for e in listed] == [(1, stored[0]), (2, None), (4, stored[1])]
    assert len(listed[1].text) < 200 and "too long" in (listed[1].error or "")
    result = runner.invoke(app, ["similar", "--ids-file", str(path), "-k", "2"])
    assert result.exit_code == 0, result.output[-2000:]
    assert max(len(line) for line in result.output.splitlines()) < 300
    assert "line 2: bad_id" in result.output


def test_add_ids_quotes_a_huge_bad_line_short(tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    path.write_text("z" * 5_000_000 + "\n")
    result = runner.invoke(app, ["add-ids", str(path)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and len(lines[0]) < 500, result.output[:500]
    assert "too long for a video id" in lines[0]


def test_ids_from_stdin_are_bounded_and_still_read(tmp_path: Path) -> None:
    text = f"{VIDEO}\n# comment\nhttps://youtu.be/{VIDEO}\n".encode()
    listed = read_id_list("-", io.BytesIO(text))
    assert [(e.line, e.video_id) for e in listed] == [(1, VIDEO), (3, VIDEO)]
    with pytest.raises(InputFileError, match="larger than 20 bytes"):
        read_id_list("-", io.BytesIO(text), max_bytes=20)
    path = tmp_path / "ids.txt"
    path.write_bytes(text)
    with pytest.raises(InputFileError, match="larger than 20 bytes"):
        read_id_list(str(path), max_bytes=20)
    with pytest.raises(InputFileError, match="larger than 20 bytes"):
        read_id_list(str(path), as_csv=True, max_bytes=20)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(f"{VIDEO}\n\xff\n".encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        read_id_list(str(bad))


# -- evaluation lists -------------------------------------------------------------------


def test_an_eval_csv_is_a_regular_file_within_its_limit(tmp_path: Path) -> None:
    from search.eval.data import load_labelled_set

    listing = tmp_path / "set.csv"
    listing.write_text(f"path_or_video_id,label\n{VIDEO},music\n{VIDEO[::-1]},music\n")
    assert len(load_labelled_set(listing).items) == 2
    with pytest.raises(InputFileError, match="larger than 20 bytes"):
        load_labelled_set(listing, max_bytes=20)
    huge = _sparse(tmp_path / "huge.csv", 3 * 1024 * 1024)
    with pytest.raises(InputFileError, match=r"larger than 1\.0 MiB"):
        load_labelled_set(huge, max_bytes=1024 * 1024)
    pipe = tmp_path / "pipe.csv"
    os.mkfifo(pipe)
    with pytest.raises(InputFileError, match="not a regular file"):
        load_labelled_set(pipe)
