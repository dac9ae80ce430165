"""Storage: the database engine and schema, the metadata store, lookup reads, run history
and the locks."""

__all__: list[str] = []
