"""IngestSummary: the JSON of `ingest --json`, what a run stores, and counting skips."""

from __future__ import annotations

from indexer.ingest.pipeline import StageTimes
from indexer.ingest.summary import IngestSummary
from indexer.records import Failure


def test_the_json_shape_and_ignored_fields_only_when_there_are_some() -> None:
    summary = IngestSummary(queries=2, pages=3, new=5, known=1, search_calls=3, videos_calls=1,
                            failed=[Failure("aaaaaaaaaaa", "no image (404)")],
                            skipped={"no id": 2})
    assert summary.to_json() == {
        "queries": 2, "pages": 3, "new": 5, "known": 1,
        "failed": [{"video_id": "aaaaaaaaaaa", "reason": "no image (404)"}],
        "api_calls": {"search": 3, "videos": 1}, "skipped": {"no id": 2}, "run_id": None,
        "watch_matches": 0}
    summary.ignored_fields.append("a.info.json: timestamp")
    assert summary.to_json()["ignored_fields"] == ["a.info.json: timestamp"]


def test_count_skipped_adds_only_what_grew_between_two_readings() -> None:
    summary = IngestSummary(skipped={"no id": 1})
    summary.count_skipped({"no id": 4, "bad title": 2}, {"no id": 6, "bad title": 2, "new": 3})
    assert summary.skipped == {"no id": 3, "new": 3}


def test_the_record_holds_the_json_times_rounded_and_the_counts() -> None:
    summary = IngestSummary(new=2, search_calls=4, videos_calls=7, stopped="quota until 09:00",
                            times=StageTimes(load=1.23456, embed=0.5, write=0.0001, wall=2.0),
                            gone=["a", "b"], confirmed={"c": "title"}, pruned=1, marked=2,
                            unmarked=1, suspect_batches=1, enriched=3, refreshed=4)
    record = summary.record()
    assert {k: record[k] for k in summary.to_json()} == summary.to_json()
    assert record["seconds"] == {"load": 1.235, "embed": 0.5, "write": 0.0, "wall": 2.0}
    assert record["quota"] == {"search": 4, "units": 7}
    assert record["stopped"] == "quota until 09:00"
    assert (record["gone"], record["confirmed"], record["pruned"], record["marked"],
            record["unmarked"], record["suspect_batches"], record["enriched"],
            record["refreshed"]) == (2, 1, 1, 2, 1, 1, 3, 4)
