"""SQLite-only behaviour: durability across reopen, concurrency, irregular promoted fields."""

from __future__ import annotations

import threading
from pathlib import Path

from collector.store.base import Aggregation, Query, Term
from collector.store.sqlite import SqliteEventStore
from tests.store.samples import make_event


def test_events_survive_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    first = SqliteEventStore(path)
    assert first.write([make_event(i) for i in range(20)]).stored == 20
    first.close()
    again = SqliteEventStore(path)
    try:
        assert again.count(Query()) == 20
        assert again.write([make_event(3)]).duplicates == 1  # identity survives too
        assert again.get(["evt-00019"])[0]["event"]["id"] == "evt-00019"
        mode = again._reader().execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
    finally:
        again.close()


def test_concurrent_writers_and_readers(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "events.db")
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        try:
            for start in range(0, 500, 50):
                batch = [make_event(offset + i) for i in range(start, start + 50)]
                store.write(batch + batch[:5])  # overlapping retries
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(50):
                store.search(Query((Term("event.outcome", "failure"),)), size=20)
                store.count(Query())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n * 1000,)) for n in range(3)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count(Query()) == 1500
    store.close()


def test_non_scalar_values_in_promoted_fields_still_match(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "events.db")
    odd = make_event(1, fields={"host.name": ["ws-01", "ws-02"]})
    store.write([odd, make_event(2)])
    found = store.search(Query((Term("host.name", "ws-02"),))).events
    assert [e["event"]["id"] for e in found] == ["evt-00001"]
    hosts = store.aggregate(Query(), Aggregation("terms", "host.name"))
    assert {(b.key, b.count) for b in hosts} == {("ws-01", 1), ("ws-02", 1), ("srv-01", 1)}
    store.close()


def test_time_range_query_uses_the_time_index(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "events.db")
    plan = (
        store._reader()
        .execute(
            "EXPLAIN QUERY PLAN SELECT doc FROM events AS e WHERE e.ts >= 1 AND e.ts < 2 ORDER BY e.ts DESC, e.eid DESC"
        )
        .fetchall()
    )
    assert any("events_ts" in row[-1] for row in plan)
    store.close()
