"""Video id and YouTube URL parsing."""

from __future__ import annotations

import pytest

from indexer.errors import VideoIdError
from search.ids import parse_video_ref

ID = "dQw4w9WgXcQ"


@pytest.mark.parametrize("text", [
    ID,
    f"  {ID} ",
    f"https://www.youtube.com/watch?v={ID}",
    f"https://www.youtube.com/watch?feature=share&v={ID}&t=42s",
    f"http://youtube.com/watch?v={ID}",
    f"https://m.youtube.com/watch?v={ID}",
    f"https://youtu.be/{ID}",
    f"https://youtu.be/{ID}?si=abc",
    f"youtu.be/{ID}",
    f"www.youtube.com/watch?v={ID}",
    f"https://www.youtube.com/shorts/{ID}",
    f"https://www.youtube.com/embed/{ID}?start=3",
    f"https://www.youtube-nocookie.com/embed/{ID}",
    f"https://www.youtube.com/live/{ID}",
])
def test_accepts_ids_and_url_forms(text: str) -> None:
    assert parse_video_ref(text) == ID


def test_accepts_dash_leading_and_local_ids() -> None:
    assert parse_video_ref("-abcDEF1234") == "-abcDEF1234"
    assert parse_video_ref("local:0123456789abcdef") == "local:0123456789abcdef"


@pytest.mark.parametrize("text", [
    "", "abc", "dQw4w9WgXcQQ", "dQw4w9WgXc!", "dQw4w9 gXcQ",
    f"ftp://youtube.com/watch?v={ID}", f"file:///watch?v={ID}", f"data:text/plain,{ID}",
    f"https://example.com/watch?v={ID}", "https://www.youtube.com/watch?v=short",
    "https://www.youtube.com/channel/UCxyz", "https://youtu.be/", "local:xyz",
])
def test_rejects_everything_else(text: str) -> None:
    with pytest.raises(VideoIdError):
        parse_video_ref(text)
