"""The fake YouTube servers, driven by the real google-api-python-client and requests."""

from __future__ import annotations

import io
import json
import math
import string
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import googleapiclient
import numpy as np
import pytest
import requests
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError
from PIL import Image, UnidentifiedImageError

from search.eval import samples
from tests.fakes.youtube import (
    API_KEY_INVALID_BODY,
    FakeVideo,
    FakeYouTube,
    photo_catalogue,
)

ID_ALPHABET = set(string.ascii_letters + string.digits + "-_")


def client(fake: FakeYouTube, key: str | None = None) -> Any:
    """The real client, pointed at the fake through client_options."""
    return build(
        "youtube",
        "v3",
        developerKey=fake.api_key if key is None else key,
        client_options={"api_endpoint": fake.api_endpoint},
        static_discovery=True,
        cache_discovery=False,
    )


@pytest.fixture
def youtube(fake_youtube: FakeYouTube) -> Iterator[Any]:
    with client(fake_youtube) as service:
        yield service


def no_sleep(request: Any) -> Any:
    """Skip the client's retry back-off (up to seconds) in tests."""
    request._sleep = lambda seconds: None
    return request


def error_of(exc: HttpError) -> dict[str, Any]:
    error: dict[str, Any] = json.loads(exc.content)["error"]
    return error


def get(fake: FakeYouTube, path: str, **params: Any) -> requests.Response:
    """A raw API request, for what the client would refuse to send."""
    return requests.get(fake.api_endpoint + path, params=params, timeout=10)


def search_all(youtube: Any, q: str, per_page: int) -> tuple[list[str], list[dict[str, Any]]]:
    """Follow nextPageToken to the end; returns the ids and the pages."""
    ids: list[str] = []
    pages: list[dict[str, Any]] = []
    request = youtube.search().list(q=q, part="snippet", type="video", maxResults=per_page)
    while request is not None:
        page = request.execute()
        pages.append(page)
        ids.extend(item["id"]["videoId"] for item in page["items"])
        request = youtube.search().list_next(request, page)
    return ids, pages


# -- the catalogue ----------------------------------------------------------------


def test_catalogue_shape() -> None:
    videos, searches = photo_catalogue()
    by_id = {video.video_id: video for video in videos}
    assert len(by_id) == len(videos)
    assert all(len(i) == 11 and set(i) <= ID_ALPHABET for i in by_id)
    assert {q: len(ids) for q, ids in searches.items()} == {
        "cats": 3,
        "animals": 7,
        "space": 9,
        "nasa": 6,
        "travel": 6,
        "photography": 9,
        "coffee": 6,
        "reuploads": 60,
    }
    assert all(i in by_id for ids in searches.values() for i in ids)
    assert set(searches["cats"]) < set(searches["animals"])
    assert set(searches["nasa"]) < set(searches["space"])
    assert any(i.startswith("-") for i in searches["space"])
    assert any("'" in by_id[i].title and "&" in by_id[i].title for i in searches["cats"])
    cats = [by_id[i] for i in searches["cats"]]
    assert len({video.channel_id for video in cats}) == 3  # re-uploads come from other channels
    coffee = [by_id[i] for i in searches["coffee"]]
    assert [v.thumbnail_missing for v in coffee].count(True) == 1
    assert [v.corrupt_thumbnail for v in coffee].count(True) == 1
    assert [v.deleted for v in coffee].count(True) == 1


def test_catalogue_is_the_same_for_a_seed_and_fresh_containers() -> None:
    first_videos, first_searches = photo_catalogue(seed=0)
    first_searches["cats"].clear()
    first_videos.clear()
    videos, searches = photo_catalogue(seed=0)
    assert len(searches["cats"]) == 3
    assert len(videos) == 73


def test_every_test_gets_a_fresh_server(fake_youtube: FakeYouTube) -> None:
    assert fake_youtube.requests == []
    assert fake_youtube.search_calls == fake_youtube.videos_calls == 0
    assert fake_youtube.search_quota_used == fake_youtube.units_used == 0
    assert fake_youtube.thumbnail_requests == {}


def test_addresses_before_start_raise() -> None:
    fake = FakeYouTube([])
    with pytest.raises(RuntimeError, match="not started"):
        _ = fake.api_endpoint
    with fake:
        assert fake.api_endpoint.startswith("http://127.0.0.1:")
        assert fake.api_endpoint.endswith("/")
        assert fake.thumbnail_base == f"http://{fake.thumbnail_host}/vi"
        assert fake.thumbnail_host != fake.api_endpoint.split("/")[2]  # a second host


# -- search.list ------------------------------------------------------------------


@pytest.mark.parametrize("per_page", [7, 10, 50])
def test_search_paging_yields_each_id_once(
    fake_youtube: FakeYouTube, youtube: Any, per_page: int
) -> None:
    ids, pages = search_all(youtube, "reuploads", per_page=per_page)
    expected = fake_youtube.searches["reuploads"]
    assert ids == expected
    assert len(set(ids)) == len(ids) == 60
    # No trailing empty page when the results end on a page boundary.
    assert len(pages) == math.ceil(60 / per_page) == fake_youtube.search_calls
    assert all("nextPageToken" in page for page in pages[:-1])
    assert "nextPageToken" not in pages[-1]
    assert "prevPageToken" not in pages[0]
    assert all("prevPageToken" in page for page in pages[1:])
    for page in pages:
        assert page["kind"] == "youtube#searchListResponse"
        assert page["pageInfo"] == {"totalResults": 60, "resultsPerPage": per_page}
        assert page["regionCode"] == "US"
        assert len(page["etag"]) == 27
    tokens = [call.param("pageToken") for call in fake_youtube.requests]
    assert tokens[0] is None and all(tokens[1:])


def test_search_sends_the_key_and_alt_json(fake_youtube: FakeYouTube, youtube: Any) -> None:
    youtube.search().list(q="cats", part="snippet", type="video").execute()
    (call,) = fake_youtube.requests
    assert (call.server, call.method, call.path, call.status) == (
        "api",
        "GET",
        "/youtube/v3/search",
        200,
    )
    assert call.param("key") == "test-key"
    assert call.param("alt") == "json"
    assert call.param("q") == "cats"


def test_prev_page_token_goes_back(youtube: Any) -> None:
    first = youtube.search().list(q="reuploads", part="snippet", maxResults=10).execute()
    second = (
        youtube.search()
        .list(q="reuploads", part="snippet", maxResults=10, pageToken=first["nextPageToken"])
        .execute()
    )
    back = (
        youtube.search()
        .list(q="reuploads", part="snippet", maxResults=10, pageToken=second["prevPageToken"])
        .execute()
    )
    assert back["items"] == first["items"]
    assert second["items"] != first["items"]


@pytest.mark.parametrize(("max_results", "expected"), [(None, 5), (0, 0), (1, 1), (50, 50)])
def test_max_results_is_honoured(youtube: Any, max_results: int | None, expected: int) -> None:
    params: dict[str, Any] = {"q": "reuploads", "part": "snippet", "type": "video"}
    if max_results is not None:
        params["maxResults"] = max_results
    page = youtube.search().list(**params).execute()
    assert len(page["items"]) == expected
    assert page["pageInfo"]["resultsPerPage"] == expected
    assert ("nextPageToken" in page) == (expected > 0)


@pytest.mark.parametrize("max_results", [51, -1])
def test_max_results_out_of_range_is_400(youtube: Any, max_results: int) -> None:
    # The client does not check the range; YouTube does.
    with pytest.raises(HttpError) as caught:
        youtube.search().list(q="cats", part="snippet", maxResults=max_results).execute()
    assert caught.value.resp.status == 400
    error = error_of(caught.value)
    assert error["errors"][0]["reason"] == "invalidParameter"
    assert error["errors"][0]["location"] == "maxResults"


def test_unknown_page_token_is_400(youtube: Any) -> None:
    with pytest.raises(HttpError) as caught:
        youtube.search().list(q="cats", part="snippet", pageToken="CAUQAB_bogus").execute()
    assert caught.value.resp.status == 400
    assert error_of(caught.value)["errors"][0]["reason"] == "invalidPageToken"


def test_search_needs_part(fake_youtube: FakeYouTube) -> None:
    response = get(fake_youtube, "youtube/v3/search", q="cats", key="test-key")
    assert response.status_code == 400
    assert response.json()["error"]["errors"][0]["reason"] == "required"


def test_search_caps_results_at_500() -> None:
    videos = [FakeVideo(samples.video_id_for(f"cap {n}"), f"clip {n}") for n in range(600)]
    searches = {"clips": [video.video_id for video in videos]}
    with FakeYouTube(videos, searches) as fake, client(fake) as youtube:
        ids, pages = search_all(youtube, "clips", per_page=50)
    assert ids == searches["clips"][:500]
    assert len(pages) == 10
    assert pages[0]["pageInfo"]["totalResults"] == 600


def test_search_snippets_are_html_escaped_and_videos_are_not(
    fake_youtube: FakeYouTube, youtube: Any
) -> None:
    page = youtube.search().list(q="cats", part="snippet", type="video").execute()
    original = page["items"][0]
    title = original["snippet"]["title"]
    assert "&#39;" in title and "&amp;" in title and "'" not in title
    assert original["snippet"]["channelTitle"] == "Chelsea &amp; Friends"
    video_id = original["id"]["videoId"]
    listed = youtube.videos().list(id=video_id, part="snippet").execute()
    plain = listed["items"][0]["snippet"]["title"]
    assert plain == fake_youtube.videos[video_id].title
    assert "'" in plain and "&" in plain and "&#39;" not in plain


def test_search_result_shape(fake_youtube: FakeYouTube, youtube: Any) -> None:
    page = youtube.search().list(q="cats", part="snippet", type="video", maxResults=1).execute()
    (item,) = page["items"]
    video = fake_youtube.videos[item["id"]["videoId"]]
    assert item["kind"] == "youtube#searchResult"
    assert item["id"] == {"kind": "youtube#video", "videoId": video.video_id}
    snippet = item["snippet"]
    assert snippet["publishedAt"] == video.published_at
    assert snippet["channelId"] == video.channel_id
    assert snippet["liveBroadcastContent"] == "none"
    assert snippet["thumbnails"] == {
        "default": {
            "url": fake_youtube.thumbnail_url(video.video_id, "default"),
            "width": 120,
            "height": 90,
        },
        "medium": {
            "url": fake_youtube.thumbnail_url(video.video_id, "mqdefault"),
            "width": 320,
            "height": 180,
        },
        "high": {
            "url": fake_youtube.thumbnail_url(video.video_id, "hqdefault"),
            "width": 480,
            "height": 360,
        },
    }


def test_unlisted_query_matches_title_words(fake_youtube: FakeYouTube, youtube: Any) -> None:
    page = youtube.search().list(q="ESPRESSO Tutorial", part="snippet", maxResults=50).execute()
    titles = {item["snippet"]["title"] for item in page["items"]}
    # The deleted one is not found by a fresh search.
    assert titles == {"Espresso tutorial (private draft)", "Espresso tutorial (broken upload)"}
    nothing = youtube.search().list(q="zebra crossing", part="snippet").execute()
    assert nothing["items"] == [] and "nextPageToken" not in nothing


def test_search_type_without_video_finds_nothing(youtube: Any) -> None:
    page = youtube.search().list(q="cats", part="snippet", type="channel").execute()
    assert page["items"] == []


def test_search_orders_and_filters(fake_youtube: FakeYouTube, youtube: Any) -> None:
    page = youtube.search().list(q="space", part="id", order="date", maxResults=50).execute()
    ids = [item["id"]["videoId"] for item in page["items"]]
    dates = [fake_youtube.videos[i].published_at for i in ids]
    assert dates == sorted(dates, reverse=True)
    assert "snippet" not in page["items"][0]
    channel = fake_youtube.videos[ids[0]].channel_id
    only = youtube.search().list(q="space", part="id", channelId=channel, maxResults=50).execute()
    assert {fake_youtube.videos[i["id"]["videoId"]].channel_id for i in only["items"]} == {channel}


# -- videos.list ------------------------------------------------------------------


def test_videos_list_omits_unknown_and_deleted_ids(fake_youtube: FakeYouTube, youtube: Any) -> None:
    coffee = fake_youtube.searches["coffee"]
    deleted = next(i for i in coffee if fake_youtube.videos[i].deleted)
    wanted = [coffee[1], "AAAAAAAAAAA", coffee[0], deleted]
    response = (
        youtube.videos()
        .list(id=",".join(wanted), part="snippet,contentDetails,statistics")
        .execute()
    )
    assert response["kind"] == "youtube#videoListResponse"
    assert [item["id"] for item in response["items"]] == [coffee[1], coffee[0]]
    assert response["pageInfo"] == {"totalResults": 2, "resultsPerPage": 2}
    item = response["items"][0]
    video = fake_youtube.videos[coffee[1]]
    assert item["kind"] == "youtube#video"
    assert item["contentDetails"]["duration"] == video.duration
    assert item["contentDetails"]["duration"].startswith("PT")
    assert item["statistics"]["viewCount"] == str(video.view_count)
    assert item["snippet"]["tags"] == list(video.tags)
    assert fake_youtube.videos_calls == 1
    assert fake_youtube.units_used == 1


def test_videos_list_accepts_a_list_of_ids(fake_youtube: FakeYouTube, youtube: Any) -> None:
    ids = fake_youtube.searches["nasa"]
    response = youtube.videos().list(id=ids, part=["snippet", "statistics"]).execute()
    assert [item["id"] for item in response["items"]] == ids
    assert "contentDetails" not in response["items"][0]


def test_videos_list_thumbnails_follow_availability(
    fake_youtube: FakeYouTube, youtube: Any
) -> None:
    original, reupload = fake_youtube.searches["cats"][:2]
    response = youtube.videos().list(id=[original, reupload], part="snippet").execute()
    details = [item["snippet"]["thumbnails"] for item in response["items"]]
    assert set(details[0]) == {"default", "medium", "high", "standard", "maxres"}
    assert set(details[1]) == {"default", "medium", "high", "standard"}
    assert details[0]["maxres"]["width"] == 1280


def test_videos_list_takes_at_most_50_ids(fake_youtube: FakeYouTube, youtube: Any) -> None:
    ids = fake_youtube.searches["reuploads"][:51]
    with pytest.raises(HttpError) as caught:
        youtube.videos().list(id=",".join(ids), part="snippet").execute()
    assert caught.value.resp.status == 400
    ok = youtube.videos().list(id=",".join(ids[:50]), part="snippet").execute()
    assert len(ok["items"]) == 50


def test_videos_list_rejects_unknown_parts(youtube: Any) -> None:
    with pytest.raises(HttpError) as caught:
        youtube.videos().list(id="AAAAAAAAAAA", part="snippet,bogus").execute()
    assert error_of(caught.value)["errors"][0]["reason"] == "unknownPart"


def test_dash_leading_id_round_trips(fake_youtube: FakeYouTube, youtube: Any) -> None:
    dash = next(i for i in fake_youtube.searches["space"] if i.startswith("-"))
    response = youtube.videos().list(id=dash, part="snippet").execute()
    assert [item["id"] for item in response["items"]] == [dash]
    thumb = requests.get(fake_youtube.thumbnail_url(dash), timeout=10)
    assert thumb.status_code == 200


def test_long_urls_sent_as_post_with_override(fake_youtube: FakeYouTube) -> None:
    ids = ",".join(fake_youtube.searches["reuploads"][:3])
    response = requests.post(
        fake_youtube.api_endpoint + "youtube/v3/videos",
        data={"id": ids, "part": "snippet", "key": "test-key"},
        headers={"X-HTTP-Method-Override": "GET"},
        timeout=10,
    )
    assert response.status_code == 200
    assert len(response.json()["items"]) == 3


def test_put_replaces_a_video(fake_youtube: FakeYouTube, youtube: Any) -> None:
    from dataclasses import replace

    video_id = fake_youtube.searches["cats"][0]
    fake_youtube.put(replace(fake_youtube.videos[video_id], deleted=True))
    assert youtube.videos().list(id=video_id, part="snippet").execute()["items"] == []



def test_published_videos_come_first_with_their_own_thumbnails(
        fake_youtube: FakeYouTube, youtube: Any) -> None:
    before = list(fake_youtube.searches["cats"])
    frame = Image.new("RGB", (640, 360), (10, 200, 30))
    fresh = [FakeVideo(video_id=samples.video_id_for(f"published:{n}"), title=f"new cat {n}",
                       tags=("kittens",), frame=frame) for n in range(2)]
    fake_youtube.publish(fresh, to=["cats", "brand new"])
    ids = [v.video_id for v in fresh]
    found, _ = search_all(youtube, "cats", 50)
    assert found == ids + before  # first, in the order given
    assert search_all(youtube, "brand new", 50)[0] == ids
    assert search_all(youtube, "kittens", 50)[0] == ids  # by their words too
    jpeg = requests.get(fake_youtube.thumbnail_url(ids[0]), timeout=10).content
    with Image.open(io.BytesIO(jpeg)) as served:
        assert served.size == (320, 180)
        red, green, _blue = served.convert("RGB").getpixel((160, 90))
        assert green > 150 and red < 60
    with pytest.raises(ValueError, match="already uploaded"):
        fake_youtube.publish(fresh[:1])
    assert found == search_all(youtube, "cats", 50)[0]  # nothing changed by the refusal


# -- keys, quota, errors ----------------------------------------------------------


def test_bad_key_is_400_api_key_invalid(fake_youtube: FakeYouTube) -> None:
    with client(fake_youtube, key="wrong-key") as youtube, pytest.raises(HttpError) as caught:
        youtube.search().list(q="cats", part="snippet").execute()
    assert caught.value.resp.status == 400
    body = json.loads(caught.value.content)
    assert body == API_KEY_INVALID_BODY
    assert body["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert body["error"]["errors"][0]["reason"] == "badRequest"
    assert fake_youtube.search_calls == 1
    assert fake_youtube.search_quota_used == 0


def test_missing_key_is_403_forbidden(fake_youtube: FakeYouTube) -> None:
    response = get(fake_youtube, "youtube/v3/search", q="cats", part="snippet")
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["errors"][0]["reason"] == "forbidden"
    assert error["message"] == "The request is missing a valid API key."


def test_search_quota_is_its_own_bucket() -> None:
    videos, searches = photo_catalogue()
    with FakeYouTube(videos, searches, search_quota=3) as fake, client(fake) as youtube:
        for _ in range(3):
            youtube.search().list(q="cats", part="snippet").execute()
        with pytest.raises(HttpError) as caught:
            no_sleep(youtube.search().list(q="cats", part="snippet")).execute(num_retries=2)
        # Other methods draw on the shared units, which are untouched.
        youtube.videos().list(id=searches["cats"][0], part="snippet").execute()
        assert fake.search_calls == 4  # quotaExceeded is not retried by the client
        assert fake.search_quota_used == 3
        assert fake.units_used == 1
    assert caught.value.resp.status == 403
    error = error_of(caught.value)
    assert error["errors"][0] == {
        "message": error["message"],
        "domain": "youtube.quota",
        "reason": "quotaExceeded",
    }
    assert "exceeded your" in error["message"]


def test_invalid_calls_are_charged_too() -> None:
    videos, searches = photo_catalogue()
    fake = FakeYouTube(videos, searches, search_quota=2, units_quota=1)
    with fake, client(fake) as youtube:
        for _ in range(2):
            with pytest.raises(HttpError):
                youtube.search().list(q="cats", part="snippet", maxResults=99).execute()
        with pytest.raises(HttpError) as spent:
            youtube.search().list(q="cats", part="snippet").execute()
        youtube.videos().list(id="AAAAAAAAAAA", part="snippet").execute()
        with pytest.raises(HttpError) as units:
            youtube.videos().list(id="AAAAAAAAAAA", part="snippet").execute()
    assert error_of(spent.value)["errors"][0]["reason"] == "quotaExceeded"
    assert error_of(units.value)["errors"][0]["reason"] == "quotaExceeded"


def test_injected_503_is_retried_by_the_client(fake_youtube: FakeYouTube, youtube: Any) -> None:
    fake_youtube.inject("/youtube/v3/search", 503, times=1)
    page = no_sleep(youtube.search().list(q="cats", part="snippet")).execute(num_retries=2)
    assert len(page["items"]) == 3
    assert [call.status for call in fake_youtube.requests] == [503, 200]
    assert fake_youtube.search_quota_used == 1  # the injected failure is not charged


def test_injected_503_without_retries_raises(fake_youtube: FakeYouTube, youtube: Any) -> None:
    fake_youtube.inject("/youtube/v3/search", 503, times=1)
    with pytest.raises(HttpError) as caught:
        youtube.search().list(q="cats", part="snippet").execute()
    assert caught.value.resp.status == 503
    assert error_of(caught.value)["status"] == "UNAVAILABLE"
    assert youtube.search().list(q="cats", part="snippet").execute()["items"]


@pytest.mark.parametrize(
    ("status", "reason", "retried"),
    [
        (403, "rateLimitExceeded", True),
        (403, "userRateLimitExceeded", True),
        (429, None, True),
        (500, None, True),
        (403, "quotaExceeded", False),
        (400, None, False),
    ],
)
def test_injected_errors_follow_google_retry_rules(
    fake_youtube: FakeYouTube, youtube: Any, status: int, reason: str | None, retried: bool
) -> None:
    fake_youtube.inject("/youtube/v3/videos", status, reason, times=1)
    request = no_sleep(youtube.videos().list(id="AAAAAAAAAAA", part="snippet"))
    if retried:
        assert request.execute(num_retries=1)["items"] == []
    else:
        with pytest.raises(HttpError) as caught:
            request.execute(num_retries=1)
        assert caught.value.resp.status == status
        if reason:
            assert error_of(caught.value)["errors"][0]["reason"] == reason
    assert fake_youtube.videos_calls == (2 if retried else 1)


def test_injected_delay_times_out_a_client(fake_youtube: FakeYouTube) -> None:
    fake_youtube.inject("/vi/", delay=1.0)
    url = fake_youtube.thumbnail_url(fake_youtube.searches["cats"][0])
    with pytest.raises(requests.Timeout):
        requests.get(url, timeout=0.2)
    assert requests.get(url, timeout=10).status_code == 200


def test_injection_matches_its_prefix_only(fake_youtube: FakeYouTube, youtube: Any) -> None:
    fake_youtube.inject("/youtube/v3/videos", 500, times=None)
    assert youtube.search().list(q="cats", part="snippet").execute()["items"]
    for _ in range(2):
        with pytest.raises(HttpError):
            youtube.videos().list(id="AAAAAAAAAAA", part="snippet").execute()
    fake_youtube.clear_injections()
    assert youtube.videos().list(id="AAAAAAAAAAA", part="snippet").execute()["items"] == []


# -- thumbnails -------------------------------------------------------------------


def dark_rows(img: Image.Image) -> int:
    rows = np.asarray(img.convert("L"), dtype=np.float64).mean(axis=1)
    return int(np.argmin(rows < 16))


@pytest.mark.parametrize("name", list(samples.THUMBNAIL_SIZES))
def test_thumbnails_have_the_right_sizes(fake_youtube: FakeYouTube, name: str) -> None:
    original = fake_youtube.searches["cats"][0]
    response = requests.get(fake_youtube.thumbnail_url(original, name), timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    with Image.open(io.BytesIO(response.content)) as img:
        assert img.format == "JPEG"
        assert img.size == samples.THUMBNAIL_SIZES[name]
        bars = dark_rows(img)
    if name in ("default", "hqdefault", "sddefault"):
        width, height = samples.THUMBNAIL_SIZES[name]
        assert bars >= (height - round(width * 9 / 16)) // 2 >= 10
    else:
        assert bars == 0
    assert fake_youtube.thumbnail_requests[original] == 1


def test_missing_maxres_is_a_grey_404(fake_youtube: FakeYouTube) -> None:
    reupload = fake_youtube.searches["cats"][1]
    assert requests.get(fake_youtube.thumbnail_url(reupload), timeout=10).status_code == 200
    response = requests.get(fake_youtube.thumbnail_url(reupload, "maxresdefault"), timeout=10)
    assert response.status_code == 404


@pytest.mark.parametrize("how", ["thumbnail_missing", "unknown id", "unknown name"])
def test_missing_thumbnail_is_404_with_grey_placeholder(
    fake_youtube: FakeYouTube, how: str
) -> None:
    missing = next(
        i for i in fake_youtube.searches["coffee"] if fake_youtube.videos[i].thumbnail_missing
    )
    url = {
        "thumbnail_missing": fake_youtube.thumbnail_url(missing, "hqdefault"),
        "unknown id": fake_youtube.thumbnail_url("AAAAAAAAAAA"),
        "unknown name": fake_youtube.thumbnail_url(fake_youtube.searches["cats"][0], "hq720"),
    }[how]
    response = requests.get(url, timeout=10)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "image/jpeg"
    with Image.open(io.BytesIO(response.content)) as img:
        assert img.size == (120, 90)
        pixels = np.asarray(img.convert("RGB"), dtype=np.int16)
    assert pixels.std() < 3  # one flat grey
    assert 100 < pixels.mean() < 230


def test_corrupt_thumbnail_is_200_html(fake_youtube: FakeYouTube) -> None:
    corrupt = next(
        i for i in fake_youtube.searches["coffee"] if fake_youtube.videos[i].corrupt_thumbnail
    )
    response = requests.get(fake_youtube.thumbnail_url(corrupt), timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.content.startswith(b"<!DOCTYPE html>")
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(response.content))


def test_head_answers_headers_only(fake_youtube: FakeYouTube) -> None:
    url = fake_youtube.thumbnail_url(fake_youtube.searches["cats"][0], "hqdefault")
    head = requests.head(url, timeout=10)
    body = requests.get(url, timeout=10)
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["Content-Length"]) == len(body.content) > 0
    missing = requests.head(fake_youtube.thumbnail_url("AAAAAAAAAAA"), timeout=10)
    assert missing.status_code == 404
    assert [(r.server, r.method) for r in fake_youtube.requests] == [
        ("thumbnails", "HEAD"),
        ("thumbnails", "GET"),
        ("thumbnails", "HEAD"),
    ]


def test_thumbnail_requests_are_counted_per_id(fake_youtube: FakeYouTube) -> None:
    first, second = fake_youtube.searches["cats"][:2]
    for name in ("default", "mqdefault"):
        requests.get(fake_youtube.thumbnail_url(first, name), timeout=10)
    requests.get(fake_youtube.thumbnail_url(second, "maxresdefault"), timeout=10)
    assert fake_youtube.thumbnail_requests == {first: 2, second: 1}
    assert [r.status for r in fake_youtube.requests] == [200, 200, 404]


def test_thumbnail_url_from_search_is_served(fake_youtube: FakeYouTube, youtube: Any) -> None:
    page = youtube.search().list(q="travel", part="snippet", maxResults=50).execute()
    for item in page["items"]:
        url = item["snippet"]["thumbnails"]["medium"]["url"]
        with Image.open(io.BytesIO(requests.get(url, timeout=10).content)) as img:
            assert img.size == (320, 180)


# -- responses against the discovery document ----------------------------------------


@cache
def discovery_schemas() -> dict[str, Any]:
    path = Path(googleapiclient.__file__).parent / "discovery_cache/documents/youtube.v3.json"
    schemas: dict[str, Any] = json.loads(path.read_text("utf-8"))["schemas"]
    return schemas


_JSON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "boolean": bool,
    "number": (int, float),
    "object": dict,
    "array": list,
}


def schema_problems(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    """Every key of value that the schema does not declare, and every wrong JSON type."""
    if "$ref" in schema:
        schema = discovery_schemas()[schema["$ref"]]
    problems: list[str] = []
    expected = _JSON_TYPES.get(schema.get("type", "object"))
    if expected is not None and (
        not isinstance(value, expected) or (expected is int and isinstance(value, bool))
    ):
        return [f"{where}: {type(value).__name__} where the schema says {schema.get('type')}"]
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if properties is not None and key in properties:
                problems += schema_problems(item, properties[key], f"{where}.{key}")
            elif extra is not None:
                problems += schema_problems(item, extra, f"{where}.{key}")
            else:
                problems.append(f"{where}.{key}: not in the schema")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            problems += schema_problems(item, schema.get("items", {}), f"{where}[{index}]")
    return problems


def test_schema_walker_can_fail() -> None:
    snippet = {"title": "x", "publishTime": "2024-01-01T00:00:00Z", "thumbnails": {"medium": []}}
    problems = schema_problems(snippet, {"$ref": "SearchResultSnippet"}, "snippet")
    assert problems == [
        "snippet.publishTime: not in the schema",
        "snippet.thumbnails.medium: list where the schema says object",
    ]


def test_responses_match_the_discovery_document(fake_youtube: FakeYouTube, youtube: Any) -> None:
    search = youtube.search().list(q="reuploads", part="snippet", maxResults=10).execute()
    second = (
        youtube.search()
        .list(q="reuploads", part="snippet", maxResults=10, pageToken=search["nextPageToken"])
        .execute()
    )
    videos = (
        youtube.videos()
        .list(
            id=fake_youtube.searches["cats"] + fake_youtube.searches["coffee"],
            part="snippet,contentDetails,statistics,status",
        )
        .execute()
    )
    assert schema_problems(search, {"$ref": "SearchListResponse"}, "search") == []
    assert schema_problems(second, {"$ref": "SearchListResponse"}, "search") == []
    assert schema_problems(videos, {"$ref": "VideoListResponse"}, "videos") == []
    assert len(videos["items"]) == 8  # the deleted coffee video is absent
    assert {item["kind"] for item in videos["items"]} == {"youtube#video"}
