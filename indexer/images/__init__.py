"""Images: downloads from allowed hosts, bounded decoding, the thumbnail cache."""

__all__: list[str] = []
