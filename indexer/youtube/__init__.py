"""The YouTube source: the Data API client and its checked answers, the quota ledger,
queries files, query cursors and gone videos."""

__all__: list[str] = []
