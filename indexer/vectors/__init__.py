"""The FAISS vector index: snapshot, tail and watermark on disk; index types for a corpus."""

__all__: list[str] = []
