"""Open the configured event store."""

from __future__ import annotations

from collector.store.base import EventStore
from collector.store.settings import StoreSettings


def open_store(settings: StoreSettings, *, writer: bool = True, maintain: bool | None = None) -> EventStore:
    """The store ``settings.kind`` names; raises StoreError when it cannot be reached or opened.

    The Elasticsearch client is imported only when asked for, so a SQLite-only collector does not
    pay for it. ``writer=False`` for processes that only read (the SOC API, ``soc doctor``): the
    embedded store then leaves indexing to the collector. ``maintain=False`` for a writer that
    leaves it to another process (the collector's ingest workers: the supervisor indexes).
    """
    if settings.kind == "sqlite":
        from collector.store.sqlite import SqliteEventStore

        return SqliteEventStore(
            settings.sqlite_path,
            retention_days=settings.retention_days,
            maintain=writer if maintain is None else maintain,
        )
    if settings.kind == "elasticsearch":
        from collector.store.elastic import ElasticEventStore

        return ElasticEventStore(settings)
    raise ValueError(f"unknown store kind {settings.kind!r}")
