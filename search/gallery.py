"""Galleries of a similarity result: a self-contained HTML page (images as data: URIs) and a
contact-sheet image, from the local thumbnail cache."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from PIL import Image, ImageDraw, ImageFont

from indexer.errors import ImageDecodeError, StoreError, ThumbsearchError
from indexer.images.decode import decode_image, read_image_bytes
from indexer.ingest.local import LOCAL_ID_PREFIX
from indexer.records import StoredVideo
from indexer.service import Service
from search.html import render
from search.neighbours import SimilarResult

if TYPE_CHECKING:
    from search.duplicates import DuplicateGroup

__all__ = [
    "SHEET_THUMB",
    "cached_thumbnail",
    "contact_sheet",
    "data_uri_of",
    "human_date",
    "query_image",
    "render_duplicates",
    "render_html",
    "similar_entries",
    "write_html",
    "write_sheet",
    "youtube_url",
]

SHEET_THUMB = (240, 135)  # one cell's image box in the contact sheet, pixels (16:9)
_PAGE_THUMB = (320, 180)


def youtube_url(video_id: str) -> str | None:
    """The watch page of a video, or None for a local image."""
    if video_id.startswith(LOCAL_ID_PREFIX):
        return None
    return f"https://www.youtube.com/watch?v={video_id}"


def human_date(moment: datetime | None) -> str:
    """A publish time as a reader says it ("5 Mar 2024"); "unknown" when absent."""
    return f"{moment.day} {moment:%b %Y}" if moment is not None else "unknown"


def cached_thumbnail(service: Service, video: StoredVideo | None) -> bytes | None:
    """A stored video's thumbnail bytes from the local cache, or None."""
    if video is None or not video.thumbnail_sha256:
        return None
    return service.cache.get(video.thumbnail_sha256)


def _decode(data: bytes | None, name: str) -> Image.Image | None:
    if data is None:
        return None
    try:
        return decode_image(data, name)
    except ImageDecodeError:
        return None


def query_image(service: Service, result: SimilarResult) -> Image.Image | None:
    """The query's image: cached thumbnail, file, or (allowed) download; None if unavailable."""
    try:
        if "video_id" in result.query:
            video_id = result.query["video_id"]
            data = cached_thumbnail(service, service.store.get_video(video_id))
            if data is None and not video_id.startswith(LOCAL_ID_PREFIX):
                data = service.fetcher.fetch(service.settings.thumbnail_url(video_id))
            return _decode(data, video_id)
        source = result.query.get("image", "")
        if urlsplit(source).scheme.lower() in ("http", "https"):
            return _decode(service.fetcher.fetch(source), source)
        return _decode(read_image_bytes(Path(source), service.settings.max_image_bytes), source)
    except ThumbsearchError:
        return None  # a gallery without the query's picture is still useful


def _data_uri(image: Image.Image | None) -> str | None:
    if image is None:
        return None
    small = image.convert("RGB")
    small.thumbnail(_PAGE_THUMB, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    small.save(buffer, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def data_uri_of(data: bytes | None, name: str) -> str | None:
    """Image bytes as a small JPEG data: URI (None when absent or undecodable)."""
    return _data_uri(_decode(data, name))


def _query_label(result: SimilarResult) -> tuple[str, str]:
    if "video_id" in result.query:
        return "query video", result.query["video_id"]
    return "query image", result.query.get("image", "")


def similar_entries(service: Service, result: SimilarResult,
                    query: Image.Image | None = None) -> list[dict[str, Any]]:
    """Data for the gallery macro: the query with its neighbours, images as data: URIs."""
    stored = service.store.get_videos([r.video_id for r in result.results])
    label, name = _query_label(result)
    if "video_id" in result.query:
        video = service.store.get_video(result.query["video_id"])
        if video is not None and video.title:
            label = video.title
    neighbours = []
    for r in result.results:
        image = _decode(cached_thumbnail(service, stored.get(r.video_id)), r.video_id)
        neighbours.append({"rank": r.rank, "name": r.video_id, "label": r.title or r.video_id,
                           "channel": r.channel_title, "image": _data_uri(image),
                           "score": r.score, "relevant": None, "url": youtube_url(r.video_id)})
    return [{"name": name, "label": label, "image": _data_uri(query), "ap": None,
             "neighbours": neighbours}]


def render_html(service: Service, result: SimilarResult) -> str:
    """The self-contained HTML page of one result."""
    entries = similar_entries(service, result, query_image(service, result))
    return render("similar.html.j2", result=result, entries=entries)


def render_duplicates(groups: Sequence[DuplicateGroup], threshold: float,
                      images: dict[str, str | None]) -> str:
    """The self-contained page of duplicate groups; ``images`` maps video id to a data:
    URI. Each group is a heading and its videos, earliest publish first."""
    entries = []
    for number, group in enumerate(groups, start=1):
        entries.append({
            "heading": f"group {number}: {len(group.videos)} videos, "
                       f"{len(group.channels)} channels, first published "
                       f"{human_date(group.first_published)}",
            "neighbours": [{"rank": i, "name": v.video_id, "label": v.title or v.video_id,
                            "channel": v.channel_title, "image": images.get(v.video_id),
                            "score": v.best_score, "relevant": True if i == 1 else None,
                            "date": human_date(v.published_at),
                            "url": youtube_url(v.video_id)}
                           for i, v in enumerate(group.videos, start=1)]})
    return render("duplicates.html.j2", entries=entries, threshold=threshold)


def _write(path: Path, data: bytes) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_html(service: Service, result: SimilarResult, path: Path) -> Path:
    """Write the HTML page of a result to ``path``."""
    _write(path, render_html(service, result).encode("utf-8"))
    return path


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _paste_fitted(sheet: Image.Image, image: Image.Image | None, box: tuple[int, int]) -> None:
    width, height = SHEET_THUMB
    if image is None:
        ImageDraw.Draw(sheet).rectangle(
            (box[0], box[1], box[0] + width - 1, box[1] + height - 1), fill=(230, 230, 230))
        return
    small = image.convert("RGB")
    small.thumbnail(SHEET_THUMB, Image.Resampling.LANCZOS)
    sheet.paste(small, (box[0] + (width - small.width) // 2, box[1] + (height - small.height) // 2))


def contact_sheet(service: Service, result: SimilarResult, columns: int = 5,
                  query: Image.Image | None = None) -> Image.Image:
    """One image: the query first, then the neighbours, each captioned, in a grid."""
    stored = service.store.get_videos([r.video_id for r in result.results])
    label, name = _query_label(result)
    head = [label, name]
    if "video_id" in result.query:
        video = service.store.get_video(result.query["video_id"])
        if video is not None:
            head = ["query", video.title or name, video.channel_title, name]
    cells: list[tuple[Image.Image | None, list[str], bool]] = [(query, head, True)]
    for r in result.results:
        image = _decode(cached_thumbnail(service, stored.get(r.video_id)), r.video_id)
        cells.append((image, [f"#{r.rank}  {r.score:.3f}", r.title or r.video_id,
                              r.channel_title, r.video_id], False))
    pad, line = 10, 16
    cell_w, cell_h = SHEET_THUMB[0] + pad, SHEET_THUMB[1] + 4 * line + pad
    columns = max(1, min(columns, len(cells)))
    rows = (len(cells) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * cell_w + pad, rows * cell_h + pad), "white")
    draw = ImageDraw.Draw(sheet)
    font, bold = _font(12), _font(13)
    for i, (image, caption, is_query) in enumerate(cells):
        x, y = pad + (i % columns) * cell_w, pad + (i // columns) * cell_h
        _paste_fitted(sheet, image, (x, y))
        if is_query:
            draw.rectangle((x - 3, y - 3, x + SHEET_THUMB[0] + 2, y + SHEET_THUMB[1] + 2),
                           outline=(200, 40, 40), width=3)
        for n, text in enumerate(caption):
            draw.text((x, y + SHEET_THUMB[1] + 3 + n * line),
                      _fit(draw, text, bold if n == 0 else font, SHEET_THUMB[0]),
                      fill=(20, 20, 20) if n < 2 else (110, 110, 110),
                      font=bold if n == 0 else font)
    return sheet


def write_sheet(service: Service, result: SimilarResult, path: Path, columns: int = 5) -> Path:
    """Write the contact sheet of a result to ``path`` (format from its suffix, PNG default)."""
    sheet = contact_sheet(service, result, columns, query_image(service, result))
    buffer = io.BytesIO()
    fmt = "JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else "PNG"
    sheet.save(buffer, fmt, **({"optimize": True} if fmt == "PNG" else {"quality": 90}))
    _write(path, buffer.getvalue())
    return path
