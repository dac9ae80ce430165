"""Images: downloads from allowed hosts, bounded decoding, the thumbnail cache."""
