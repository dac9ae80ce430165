"""Evaluation of retrieval quality: labelled sets, metrics, runs and reports, and the
sample photos the sets are made from."""

__all__: list[str] = []
