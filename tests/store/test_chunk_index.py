"""The embedded store's chunk indexes: every answer equals a plain scan, whatever is indexed yet.

Queries are checked against the same filter evaluated in Python over everything written, after
writes that leave rows in the tail, after indexing runs, after merges, after retention, and on a
file written by the previous release (per-row pivot indexes, a UNIQUE event id).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.store import sqlite_index as ix
from collector.store.base import Aggregation, Query, StoreError, Term
from collector.store.sqlite import SqliteEventStore
from soc_common.ecs import Event, iso

START = datetime(2025, 3, 1, tzinfo=UTC)


def _event(i: int, *, ts: datetime | None = None) -> Event:
    when = ts or START + timedelta(seconds=i)
    user: Any = f"user{i % 9}"
    if i % 97 == 0:
        user = [f"user{i % 9}", "admin"]  # an array: the column stays NULL, the row is irregular
    return {
        "@timestamp": iso(when),
        "event": {"id": f"e{i}", "dataset": "system.auth" if i % 3 else "network_traffic.flow"},
        "host": {"name": f"pc-{i % 13}"},
        "source": {"ip": f"10.0.{i % 5}.{i % 11}"},
        "destination": {"ip": f"192.0.2.{i % 4}"},
        "user": {"name": user},
    }


def _matches(event: Event, field: str, value: str) -> bool:
    top, sub = field.split(".")
    got = event.get(top, {}).get(sub)
    return value in got if isinstance(got, list) else got == value


QUERIES = [
    ("source.ip", "10.0.3.3"),
    ("user.name", "user4"),
    ("user.name", "admin"),
    ("host.name", "pc-7"),
    ("destination.ip", "192.0.2.1"),
    ("event.dataset", "network_traffic.flow"),
    ("event.id", "e1234"),
]


def _check(store: SqliteEventStore, written: list[Event]) -> None:
    for field, value in QUERIES:
        expected = sorted(e["event"]["id"] for e in written if _matches(e, field, value))
        query = Query((Term(field, value),))
        page = store.search(query, size=10_000)
        assert sorted(e["event"]["id"] for e in page.events) == expected, (field, value)
        assert store.count(query) == page.total == len(expected)
        lo, hi = START + timedelta(seconds=100), START + timedelta(seconds=900)
        ranged = Query((Term(field, value),), lo, hi)
        in_range = [e for e in written if _matches(e, field, value) and iso(lo) <= e["@timestamp"] < iso(hi)]
        assert store.count(ranged) == len(in_range), (field, value)
        if field != "event.id":
            buckets = store.aggregate(ranged, Aggregation("terms", "host.name", size=100))
            assert sum(b.count for b in buckets) == len(in_range)


def test_answers_are_the_same_in_the_tail_after_indexing_and_after_merges(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "events.db")
    written: list[Event] = []
    try:
        for start in range(0, 2000, 100):
            batch = [_event(i) for i in range(start, start + 100)]
            store.write(batch)
            written += batch
            if start % 300 == 0:
                store.refresh()  # a chunk per refresh; the rows after it stay in the tail
        _check(store, written)
        with sqlite3.connect(tmp_path / "events.db") as conn:
            assert conn.execute("SELECT COUNT(*) FROM ix_chunks").fetchone()[0] >= 5
        with store._write_lock:
            merged = ix.merge_chunks(store._writer, fan_in=2)
        assert merged >= 2
        _check(store, written)
        store.refresh()
        assert ix.tail_rows(store._reader()) == 0
        _check(store, written)
        assert [e["event"]["id"] for e in store.get(["e5", "e1999", "nope", "e0"])] == ["e5", "e1999", "e0"]
    finally:
        store.close()


def test_a_resent_event_is_a_duplicate_in_the_tail_and_once_indexed(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "events.db")
    try:
        batch = [_event(i) for i in range(50)]
        assert store.write(batch).stored == 50
        assert (store.write(batch[:10]).stored, store.write(batch[:10]).duplicates) == (0, 10)
        store.refresh()
        again = store.write(batch)
        assert (again.stored, again.duplicates) == (0, 50)
        assert store.count(Query()) == 50
    finally:
        store.close()


def test_retention_drops_whole_chunks_and_an_emptied_table_starts_over(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "events.db")
    try:
        old = [_event(i, ts=START - timedelta(days=200, seconds=-i)) for i in range(300)]
        store.write(old)
        store.refresh()
        new = [_event(i) for i in range(300, 400)]
        store.write(new)
        store.refresh()
        assert store.delete_older_than(START - timedelta(days=1)) == 300
        with sqlite3.connect(tmp_path / "events.db") as conn:
            assert conn.execute("SELECT COUNT(*) FROM ix_chunks WHERE hi <= 300").fetchone()[0] == 0
        _check(store, new)
        assert store.delete_older_than(START + timedelta(days=1)) == 100
        assert ix.indexed_upto(store._reader()) == 0
        fresh = [_event(i) for i in range(1000, 1100)]  # rowids start from 1 again
        store.write(fresh)
        _check(store, fresh)
        store.refresh()
        _check(store, fresh)
    finally:
        store.close()


def _release_0_2_file(path: Path, events: list[Event]) -> None:
    """A file as 0.2 wrote it: UNIQUE eid, a plain (ts, eid) index, per-row pivot indexes."""
    store = SqliteEventStore(path)
    store.write(events)
    store.close()
    with sqlite3.connect(path) as conn:
        for table in ("ix_chunks", "ix_state", *(f"ix_{c}" for c in ix.PIVOT_COLUMNS.values())):
            conn.execute(f"DROP TABLE {table}")
        conn.execute("DROP INDEX events_ts")
        conn.execute("CREATE INDEX events_ts ON events (ts, eid)")
        conn.execute("CREATE UNIQUE INDEX events_eid_unique ON events (eid)")
        for column in ("dataset", "host_name", "source_ip", "destination_ip", "user_name"):
            conn.execute(f"CREATE INDEX events_{column} ON events ({column}, ts) WHERE {column} IS NOT NULL")
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")


def test_a_file_from_the_previous_release_is_indexed_in_steps_and_answers_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    written = [_event(i) for i in range(1500)]
    _release_0_2_file(path, written)
    monkeypatch.setattr(ix, "RUN_MAX_ROWS", 400)
    store = SqliteEventStore(path)
    try:
        _check(store, written)  # nothing indexed: the whole table is the tail
        assert store.write(written[:5]).duplicates == 5  # the old UNIQUE eid still refuses them
        store._indexer.run(store._index_connection(), store._write_lock, max_rows=400)
        assert ix.indexed_upto(store._reader()) == 400
        _check(store, written)
        store.refresh()
        assert ix.indexed_upto(store._reader()) == 1500
        _check(store, written)
    finally:
        store.close()


def test_readers_see_every_row_while_the_maintenance_thread_indexes_and_merges(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "events.db")
    stop = threading.Event()
    errors: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            n = store.count(Query((Term("host.name", "pc-3"),)))
            total = store.count(Query())
            if n * 13 > total + 13 * 13:  # never more than its share, and never rows counted twice
                errors.append(f"{n} of {total}")

    thread = threading.Thread(target=reader)
    thread.start()
    written: list[Event] = []
    try:
        for start in range(0, 3000, 150):
            batch = [_event(i) for i in range(start, start + 150)]
            store.write(batch)
            written += batch
            store.index_pending(force=True, merge_rows=10_000)
    finally:
        stop.set()
        thread.join()
    try:
        assert not errors
        _check(store, written)
    finally:
        store.close()


def test_a_reader_process_leaves_indexing_to_the_writer(tmp_path: Path) -> None:
    writer = SqliteEventStore(tmp_path / "events.db", maintain=False)  # as the SOC API opens it
    try:
        written = [_event(i) for i in range(400)]
        writer.write(written)
        writer._indexer.last_run = 0.0  # "due" by age, were a maintenance thread running
        assert not writer._maintainer.is_alive()
        threading.Event().wait(2 * 0.5)  # two maintenance periods
        assert ix.indexed_upto(writer._reader()) == 0  # nothing indexed behind its back
        _check(writer, written)  # the tail answers
        writer.refresh()  # an explicit refresh still indexes
        assert ix.indexed_upto(writer._reader()) == 400
    finally:
        writer.close()


def test_an_indexing_outage_is_logged_once_and_its_end_too(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = SqliteEventStore(tmp_path / "events.db")
    try:
        store.write([_event(i) for i in range(50)])
        with store._index_lock:  # the connection the maintenance thread indexes with
            store._index_connection().execute("PRAGMA busy_timeout = 20")
        blocker = sqlite3.connect(tmp_path / "events.db", timeout=0)
        blocker.execute("BEGIN IMMEDIATE")  # the maintenance thread cannot write for ~2 s
        store._indexer.last_run = 0.0  # due by age
        with caplog.at_level("WARNING", logger="collector.store.sqlite"):
            threading.Event().wait(2.0)
            blocker.rollback()
            blocker.close()
            deadline = threading.Event()
            for _ in range(40):
                if ix.indexed_upto(store._reader()) == 50:
                    break
                deadline.wait(0.1)
        messages = [r.getMessage() for r in caplog.records if "indexing" in r.getMessage()]
        assert len([m for m in messages if "failed" in m]) == 1, messages
        assert len([m for m in messages if "works again" in m]) == 1, messages
        assert ix.indexed_upto(store._reader()) == 50
    finally:
        store.close()


def test_a_foreign_write_lock_fails_receivers_within_their_own_timeout(tmp_path: Path) -> None:
    """While a backup or a sqlite3 shell holds the file's write lock, the indexer gives up fast:
    the receivers' write fails within its own busy timeout (ingest answers 503), not behind the
    indexer's wait as well."""
    store = SqliteEventStore(tmp_path / "events.db")
    try:
        store.write([_event(i) for i in range(100)])
        store._writer.execute("PRAGMA busy_timeout = 2000")
        blocker = sqlite3.connect(tmp_path / "events.db", timeout=0, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        store._indexer.last_run = 0.0  # indexing due: the maintenance thread now waits for the lock
        threading.Event().wait(0.8)
        started = time.monotonic()
        with pytest.raises(StoreError, match="locked"):
            store.write([_event(1000)])
        assert time.monotonic() - started < 2.0 + 2.5  # its own 2 s, and at most one short indexer attempt
        blocker.execute("ROLLBACK")
        blocker.close()
    finally:
        store.close()


def test_batches_queued_behind_a_locked_write_fail_with_it(tmp_path: Path) -> None:
    """A second receiver's batch, queued while the first waits out the busy timeout on a foreign lock,
    fails with it instead of waiting the timeout out again (an agent would time out before its 503)."""
    store = SqliteEventStore(tmp_path / "events.db", maintain=False)
    try:
        store.write([_event(i) for i in range(10)])
        store._writer.execute("PRAGMA busy_timeout = 1500")
        blocker = sqlite3.connect(tmp_path / "events.db", timeout=0, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        took: dict[str, float] = {}

        def write(name: str, first: int) -> None:
            started = time.monotonic()
            with pytest.raises(StoreError, match="locked"):
                store.write([_event(first)])
            took[name] = time.monotonic() - started

        first = threading.Thread(target=write, args=("first", 1000))
        second = threading.Thread(target=write, args=("second", 2000))
        first.start()
        threading.Event().wait(0.3)  # the first holds the writer, waiting for the lock
        second.start()
        first.join(10)
        second.join(10)
        assert took["first"] < 1.5 + 1.0
        assert took["second"] < 1.5 + 0.5  # behind the first's wait only, not a wait of its own
        blocker.execute("ROLLBACK")
        blocker.close()
        assert store.write([_event(3000)]).stored == 1
    finally:
        store.close()
