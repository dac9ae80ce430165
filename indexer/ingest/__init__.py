"""The ingest jobs: their sources (search queries, id lists, local files, re-embedding),
the pipeline, claims, enrichment, the schedule and Ray backfills."""

__all__: list[str] = []
