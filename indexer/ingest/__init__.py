"""The ingest jobs: their sources (search queries, id lists, local files, re-embedding),
the loop that drives them, the pipeline, claims, enrichment, the schedule and Ray backfills."""
