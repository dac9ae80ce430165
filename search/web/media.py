"""What the routes share: the image media types they answer and the longest video reference."""

from __future__ import annotations

__all__ = ["IMAGE_TYPES", "MAX_REF_CHARS", "image_type"]

IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif")
MAX_REF_CHARS = 2048  # a video id or a YouTube URL


def image_type(data: bytes) -> str:
    """The media type of a cached thumbnail, from its first bytes (JPEG unless it says)."""
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    return "image/jpeg"
