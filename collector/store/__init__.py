"""Event stores behind one interface: Elasticsearch in production, embedded SQLite on one machine."""

from collector.store.base import (
    Aggregation,
    Bucket,
    EventStore,
    Exists,
    Filter,
    Not,
    Query,
    Range,
    SearchPage,
    StoreError,
    Term,
    WriteResult,
)

__all__ = [
    "Aggregation",
    "Bucket",
    "EventStore",
    "Exists",
    "Filter",
    "Not",
    "Query",
    "Range",
    "SearchPage",
    "StoreError",
    "Term",
    "WriteResult",
]
