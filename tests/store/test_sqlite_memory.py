"""The SQLite store's memory bounds: small page caches for per-thread readers, none left behind."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

from collector.store.sqlite import READER_CACHE_KIB, WRITER_CACHE_KIB, SqliteEventStore
from soc_common.ecs import new_event


def _cache_kib(conn: object) -> int:
    import sqlite3

    assert isinstance(conn, sqlite3.Connection)
    return -int(conn.execute("PRAGMA cache_size").fetchone()[0])


def test_readers_get_a_smaller_page_cache_than_the_writer(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "events.db")
    try:
        assert READER_CACHE_KIB < WRITER_CACHE_KIB
        assert _cache_kib(store._writer) == WRITER_CACHE_KIB
        assert _cache_kib(store._reader()) == READER_CACHE_KIB
    finally:
        store.close()


def test_readers_of_finished_threads_do_not_accumulate(tmp_path: Path) -> None:
    """A thread per request (API, /health) must not leave a connection and its page cache behind."""
    store = SqliteEventStore(tmp_path / "events.db")
    try:
        store.write([new_event(dataset="test.memory", event_id=f"e{i}") for i in range(50)])
        counts: list[int] = []

        def request() -> None:
            counts.append(int(store.health()["count"]))

        for _ in range(30):
            thread = threading.Thread(target=request)
            thread.start()
            thread.join()
        gc.collect()
        assert counts == [50] * 30
        with store._readers_lock:
            alive = list(store._readers)
        assert len(alive) == 0, f"{len(alive)} reader connections outlived their threads"
    finally:
        store.close()


def test_a_failed_write_leaves_no_reference_cycle(tmp_path: Path) -> None:
    """The collector collects cycles only every few seconds (collector.gc_clock): a failed write must
    free its rows by reference counting, or an outage's retries pile them up between collections."""
    import pytest

    from collector.store.base import StoreError

    store = SqliteEventStore(tmp_path / "events.db", maintain=False)
    events = [new_event(dataset="t", event_id=f"e{i}") for i in range(200)]
    store._writer.close()  # every write now fails inside the group commit
    gc.collect()
    gc.disable()
    try:
        for _ in range(3):
            with pytest.raises(StoreError):
                store.write(events)
        assert gc.collect() == 0
    finally:
        gc.enable()
        store.close()
