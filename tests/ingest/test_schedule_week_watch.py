"""The scheduled week with a watchlist: re-uploads of watched thumbnails appear on day 3 and
are reported by that day's run, once, to `watch matches`, `runs` and the --on-match command.

Everything goes through the command line (`thumbsearch schedule --on-match`, `watch add`,
`watch matches`, `runs`) in this process, with the real default model, against the fake
YouTube. The days pass on a settable clock: each `schedule` runs one batch a day (its pause
between batches moves the clock to 06:00 Pacific the next day and uploads that day's
videos). The thumbnails are real photos (scikit-image's) and edits of them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from typer.testing import CliRunner, Result

import indexer.ingest.schedule
import indexer.service
from indexer.settings import Settings
from search.cli import app
from search.eval import edits, samples
from search.watch import DEFAULT_THRESHOLD
from tests.fakes.clock import Clock
from tests.fakes.youtube import FakeVideo, FakeYouTube

pytestmark = pytest.mark.slow

PACIFIC = ZoneInfo("America/Los_Angeles")
FIRST_DAY = datetime(2026, 12, 1, 6, 0, tzinfo=PACIFIC)
QUERIES = ("pets and food", "travel and space")
WATCHED = ("chelsea", "coffee", "china")  # the photos whose originals are watched
UNWATCHED = ("rocket", "coins", "astronaut")  # day 1's other originals
runner = CliRunner()


@dataclass(frozen=True)
class Upload:
    """A video uploaded on some day: what it is, and whether it re-uploads a watched one."""

    video: FakeVideo
    kind: str  # "letterbox", "title", "mirror", "tiny", "original"
    photo: str
    watched: bool  # a re-upload of a watched original


def _frame(photo: Image.Image) -> Image.Image:
    """An original upload's frame: the photo as a 1280x720 video frame."""
    return samples.youtube_thumbnail(photo, "maxresdefault")


def _variant(kind: str, photo: Image.Image) -> Image.Image:
    """A re-uploader's frame made from a photo's original frame, as the hard set edits it."""
    small = _frame(photo).resize((640, 360), Image.Resampling.LANCZOS)
    if kind == "letterbox":  # the whole photo in a 4:3 picture with bars, shown in 16:9
        box = edits.boxed(photo, edits.BOX_SIZES["hq"])
        assert box is not None and box[0] == "letterbox"
        return samples.letterbox(box[1], "mqdefault")
    if kind == "title":
        return samples.draw_title(small, "FULL VIDEO (HD) - you won't believe the end")
    if kind == "mirror":
        return samples.hflip(small)
    if kind == "tiny":  # YouTube's 120x90 default.jpg, uploaded again as the frame
        return samples.youtube_thumbnail(photo, "default")
    raise AssertionError(kind)


class Week:
    """The fake YouTube, the clock, the uploads of each day and the CLI between them."""

    def __init__(self, fake: FakeYouTube, clock: Clock, folder: Path) -> None:
        self.fake = fake
        self.clock = clock
        self.folder = folder
        self.photos = samples.sample_photos()
        self.uploads: dict[int, list[tuple[Upload, str]]] = {}
        self.planted: list[Upload] = []

    def video(self, key: str, title: str, frame: Image.Image, day: int) -> FakeVideo:
        published = (FIRST_DAY + timedelta(days=day - 1, hours=-3)).astimezone(UTC)
        return FakeVideo(video_id=samples.video_id_for(f"watch-week:{key}"), title=title,
                         channel_title=f"channel of {key}",
                         published_at=published.strftime("%Y-%m-%dT%H:%M:%SZ"), frame=frame)

    def plan(self, day: int, query: str, kind: str, photo: str) -> Upload:
        """Upload on ``day`` (to ``query``'s results) an original or a re-upload of ``photo``."""
        image = self.photos[photo]
        frame = _frame(image) if kind == "original" else _variant(kind, image)
        upload = Upload(self.video(f"{photo}:{kind}:{day}", f"{photo} {kind}", frame, day),
                        kind, photo, kind != "original" and photo in WATCHED)
        self.uploads.setdefault(day, []).append((upload, query))
        return upload

    def day_of(self, moment: datetime) -> int:
        return (moment.astimezone(PACIFIC).date() - FIRST_DAY.date()).days + 1

    def begin(self, day: int) -> None:
        """Move the clock to 06:00 Pacific of ``day`` and upload that day's videos."""
        self.clock.now = (FIRST_DAY + timedelta(days=day - 1)).astimezone(UTC)
        for upload, query in self.uploads.get(day, []):
            self.fake.publish([upload.video], to=[query])
            self.planted.append(upload)

    def schedule(self, first: int, days: int, command: str,
                 monkeypatch: pytest.MonkeyPatch) -> Result:
        """`thumbsearch schedule FILE --every 1d --on-match COMMAND` for ``days`` batches,
        one a day from day ``first``."""
        real = indexer.ingest.schedule.run_schedule

        def next_day(_seconds: float) -> bool:
            self.begin(self.day_of(self.clock.now) + 1)
            return False

        def one_a_day(*args: Any, **kwargs: Any) -> int:
            return real(*args, **kwargs, pause=next_day, max_batches=days)

        self.begin(first)
        with monkeypatch.context() as patch:
            patch.setattr(indexer.ingest.schedule, "run_schedule", one_a_day)
            return runner.invoke(app, ["schedule", str(self.folder / "queries.toml"),
                                       "--every", "1d", "--on-match", command])


@pytest.fixture
def week(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Week]:
    """Day 1's six originals (three to be watched) found by two queries; the CLI on a clock."""
    clock = Clock(FIRST_DAY.astimezone(UTC))
    with FakeYouTube([], {}, search_quota=10_000) as fake:
        for name, value in (("YOUTUBE_API_KEY", fake.api_key),
                            ("THUMBSEARCH_YOUTUBE_ENDPOINT", fake.api_endpoint),
                            ("THUMBSEARCH_THUMBNAIL_BASE", fake.thumbnail_base),
                            ("THUMBSEARCH_ALLOWED_HOSTS", fake.thumbnail_host)):
            monkeypatch.setenv(name, value)
        real = indexer.service.build_service

        def on_the_clock(settings: Settings, *args: Any, **kwargs: Any) -> Any:
            return real(settings, *args, **{**kwargs, "clock": clock})

        monkeypatch.setattr(indexer.service, "build_service", on_the_clock)
        (tmp_path / "queries.toml").write_text("".join(
            f'[[queries]]\nq = "{q}"\npages = 1\nper_page = 20\n\n' for q in QUERIES))
        built = Week(fake, clock, tmp_path)
        for photo in WATCHED:
            built.plan(1, QUERIES[0] if photo != "china" else QUERIES[1], "original", photo)
        for photo in UNWATCHED:
            built.plan(1, QUERIES[1], "original", photo)
        yield built


def _json(args: list[str]) -> Any:
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _scores(week: Week) -> dict[str, float]:
    """Each planted video's cosine against the watched original of its photo (the stored
    vectors, as the run's check saw them); a non-match's against its closest watched item."""
    from search.watch import list_watchlist

    with indexer.service.build_service(Settings.from_env()) as service:
        watched = {item.video_id: item.vector for item in list_watchlist(service)}
        scores = {}
        for upload in week.planted:
            stored = service.store.get_vector(upload.video.video_id, service.spec.model_id)
            assert stored is not None, upload
            if upload.watched:
                own = watched[_original(week, upload.photo).video_id]
                scores[upload.video.video_id] = float(stored[1] @ own)
            else:
                scores[upload.video.video_id] = max(float(stored[1] @ w)
                                                    for w in watched.values())
    return scores


def _original(week: Week, photo: str) -> FakeVideo:
    return next(u.video for u, _ in week.uploads[1] if u.photo == photo)


def test_a_week_reports_each_re_upload_of_a_watched_thumbnail_once_on_its_day(
        week: Week, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    got = tmp_path / "on-match"
    got.mkdir()
    command = f'cat > "{got}/run-$WATCH_RUN_ID.json"'
    # Day 3: re-uploads of the watched thumbnails, and videos that are none.
    chelsea_box = week.plan(3, QUERIES[0], "letterbox", "chelsea")
    coffee_title = week.plan(3, QUERIES[0], "title", "coffee")
    china_mirror = week.plan(3, QUERIES[1], "mirror", "china")
    tiny = [week.plan(3, QUERIES[0], "tiny", "chelsea"),
            week.plan(3, QUERIES[1], "tiny", "china")]
    for photo in ("flower", "motorcycle", "hubble_deep_field"):
        week.plan(3, QUERIES[1], "original", photo)
    week.plan(3, QUERIES[1], "mirror", "rocket")  # a re-upload, of a video nobody watches
    week.plan(5, QUERIES[0], "original", "camera")

    first = week.schedule(1, 1, command, monkeypatch)
    assert first.exit_code == 0, first.output
    assert "watch match" not in first.stdout  # nothing watched yet
    ids = [_original(week, photo).video_id for photo in WATCHED]
    added = _json(["watch", "add", *ids, "--json"])
    assert [a["name"] for a in added] == ids
    assert all(a["matches"] == [] and a["threshold"] == round(DEFAULT_THRESHOLD, 4)
               for a in added), added  # no other original looks like a watched one

    rest = week.schedule(2, 6, command, monkeypatch)
    assert rest.exit_code == 0, rest.output
    batches = rest.stdout.strip().splitlines()
    assert len(batches) == 6 and all(b.startswith("batch: queries 2") for b in batches)
    assert "warning" not in rest.stderr and "Traceback" not in rest.output

    scores = _scores(week)
    print("\nscore of each day-3 upload against its watched original "
          f"(non-matches: their best watched item); default threshold {DEFAULT_THRESHOLD}")
    for upload in week.planted:
        if week.day_of(datetime.fromisoformat(upload.video.published_at)) > 1:
            print(f"  {upload.kind:9} {upload.photo:17} {'watched' if upload.watched else '-':8}"
                  f" {scores[upload.video.video_id]:.4f}")
    # Every planted re-upload of a watched photo (letterboxed, title bar, mirrored and both
    # tiny 120x90 ones) scores above the default threshold: each must be found.
    clears = {u.video.video_id for u in week.planted
              if u.watched and scores[u.video.video_id] >= DEFAULT_THRESHOLD - 1e-6}
    watched_uploads = {u.video.video_id for u in week.planted if u.watched}
    assert {chelsea_box.video.video_id, coffee_title.video.video_id,
            china_mirror.video.video_id, *(u.video.video_id for u in tiny)} == clears
    assert clears == watched_uploads
    expected = {(_original(week, u.photo).video_id, u.video.video_id) for u in week.planted
                if u.video.video_id in clears}
    others = {u.video.video_id for u in week.planted if u.photo not in WATCHED}
    assert others and all(scores[v] < DEFAULT_THRESHOLD - 0.2 for v in others)

    runs = sorted(_json(["runs", "--json", "-n", "50"]), key=lambda r: r["id"])
    assert len(runs) == 7
    by_day = {week.day_of(datetime.fromisoformat(r["started_at"])): r for r in runs}
    assert sorted(by_day) == list(range(1, 8))
    day3 = by_day[3]["id"]
    assert [by_day[d]["watch_matches"] for d in range(1, 8)] == [0, 0, len(expected), 0, 0,
                                                                 0, 0]
    assert f", {len(expected)} watch matches" in batches[1]  # day 3's summary line
    # Day 5 stored one unrelated video; the other days stored none.
    assert ", new videos 1," in batches[3] and ", 0 watch matches" in batches[3], batches
    # Something is watched: every other batch says it found none, also one that stored none.
    assert all(", 0 watch matches" in b for i, b in enumerate(batches) if i != 1), batches

    matches = _json(["watch", "matches", "--json"])
    assert sorted((m["watch"], m["video_id"]) for m in matches) == sorted(expected)
    assert {m["run_id"] for m in matches} == {day3}
    for match in matches:
        assert match["score"] == pytest.approx(scores[match["video_id"]], abs=1e-4)
        assert match["watched_video_id"] == match["watch"]
    assert _json(["watch", "matches", "--json", "--since", "2026-12-04"]) == []  # none later
    assert len(_json(["watch", "matches", "--json", "--since", "2026-12-03"])) == len(expected)

    # The --on-match command ran once, for day 3's run, with exactly its matches.
    assert sorted(p.name for p in got.iterdir()) == [f"run-{day3}.json"]
    payload = json.loads((got / f"run-{day3}.json").read_text())
    assert payload["run_id"] == day3 and payload["count"] == len(expected)
    assert sorted(payload["matches"], key=lambda m: m["video_id"]) == sorted(
        matches, key=lambda m: m["video_id"])

    # Day 8: another re-upload while the command fails: reported, and the schedule goes on.
    late = week.plan(8, QUERIES[1], "title", "china")
    failing = week.schedule(8, 2, f'cat > "{got}/failed-$WATCH_RUN_ID.json"; exit 1',
                            monkeypatch)
    assert failing.exit_code == 0, failing.output
    assert len(failing.stdout.strip().splitlines()) == 2  # day 9's batch ran too
    day8 = max(r["id"] for r in _json(["runs", "--json", "-n", "2"])) - 1
    warning = (f"warning: the --on-match command for run {day8} (1 matches) failed: exited "
               "with status 1; ingestion goes on")
    assert warning in failing.stderr, failing.stderr
    assert json.loads((got / f"failed-{day8}.json").read_text())["matches"][0][
        "video_id"] == late.video.video_id
    found = _json(["watch", "matches", "--json", "--name", _original(week, "china").video_id])
    assert (found[0]["video_id"], found[0]["run_id"]) == (late.video.video_id, day8)  # newest
    assert len(_json(["watch", "matches", "--json"])) == len(expected) + 1

    table = runner.invoke(app, ["runs", "-n", "9"])
    listed = runner.invoke(app, ["watch", "matches"])
    print("\n$ thumbsearch runs -n 9\n" + table.output + "\n$ thumbsearch watch matches\n"
          + listed.output + "\n--on-match input of day 3:\n"
          + (got / f"run-{day3}.json").read_text())
