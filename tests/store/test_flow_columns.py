"""The flow fields the anomaly detectors filter and group on (reason, bytes, port, zones), the
``composite`` aggregation, and SQLite files created before those fields had columns.

Every store must give the same answers; on SQLite the answers must not depend on whether a row's
value sits in a column (the fast path), only in the JSON (an array, a row older than the column),
or both.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

from collector.store import sqlite as sqlite_module
from collector.store.base import Aggregation, EventStore, Not, Query, Range, Term
from collector.store.sqlite import SqliteEventStore
from collector.store.sqlite_query import PROMOTED_COLUMNS, TEXT_COLUMNS, aggregation_sql
from soc_common.ecs import Event, parse_ts
from tests.store.samples import BASE_TIME, make_event

NEW_COLUMNS = [c for c in PROMOTED_COLUMNS.values() if c not in TEXT_COLUMNS]


def flow(i: int, src: str, dst: str, port: Any, sent: Any, reason: str = "closed", zone: str = "internet") -> Event:
    return make_event(
        i,
        fields={
            "event.dataset": "network_traffic.flow",
            "event.reason": reason,
            "source.ip": src,
            "source.bytes": sent,
            "destination.ip": dst,
            "destination.port": port,
            "soc.source_zone": "office",
            "soc.destination_zone": zone,
        },
    )


def flows() -> list[Event]:
    return [
        flow(0, "192.168.1.10", "203.0.113.5", 443, 900),
        flow(1, "192.168.1.10", "203.0.113.5", 443, 10_000),
        flow(2, "192.168.1.10", "203.0.113.6", 8443, 70, "active_timeout"),
        flow(3, "192.168.1.11", "203.0.113.5", 443, 5),
        flow(4, "192.168.1.11", "10.0.0.20", 445, 123_456, zone="datacenter"),
        flow(5, "192.168.1.12", "203.0.113.6", [80, 443], 50),  # irregular: two ports
        flow(6, "192.168.1.12", "203.0.113.6", 80, [20, 30]),  # irregular: two byte counts
    ]


def answers(store: EventStore) -> dict[str, Any]:
    """Everything the detectors ask of these fields, in a comparable form."""
    flows_only = Term("event.dataset", "network_traffic.flow")
    composite = store.aggregate(
        Query((flows_only,)),
        Aggregation(
            "composite", fields=("destination.ip", "source.ip"), size=100, metric="sum", metric_field="source.bytes"
        ),
    )
    ports = store.aggregate(
        Query((flows_only,)),
        Aggregation("terms", "source.ip", size=10, metric="distinct", metric_field="destination.port"),
    )
    out_bytes = store.aggregate(
        Query((flows_only, Not(Term("soc.destination_zone", "datacenter")))),
        Aggregation("terms", "soc.source_zone", metric="sum", metric_field="source.bytes"),
    )
    return {
        "composite": sorted((b.key, b.count, b.value) for b in composite),
        "ports": sorted((b.key, b.count, b.value) for b in ports),
        "out_bytes": [(b.key, b.count, b.value) for b in out_bytes],
        "not_timeout": store.count(Query((Not(Term("event.reason", "active_timeout")),))),
        "port_443": store.count(Query((Term("destination.port", 443),))),
        "big": store.count(Query((Range("source.bytes", gte=1000),))),  # numeric, not text, order
        "external": store.count(Query((Term("soc.destination_zone", "internet"),))),
    }


EXPECTED = {
    "composite": [
        (("10.0.0.20", "192.168.1.11"), 1, 123_456.0),
        (("203.0.113.5", "192.168.1.10"), 2, 10_900.0),
        (("203.0.113.5", "192.168.1.11"), 1, 5.0),
        (("203.0.113.6", "192.168.1.10"), 1, 70.0),
        (("203.0.113.6", "192.168.1.12"), 2, 100.0),
    ],
    "ports": [("192.168.1.10", 3, 2.0), ("192.168.1.11", 2, 2.0), ("192.168.1.12", 2, 2.0)],
    "out_bytes": [("office", 6, 10_900.0 + 70 + 5 + 50 + 50)],
    "not_timeout": 6,
    "port_443": 4,
    "big": 2,
    "external": 6,
}


def test_flow_fields_and_composite_on_every_store(store: EventStore) -> None:
    result = store.write(flows())
    assert result.errors == [] and result.stored == 7
    store.refresh()
    assert answers(store) == EXPECTED


def test_composite_crosses_array_values_and_skips_missing_fields(store: EventStore) -> None:
    events = [make_event(i) for i in range(4)]  # related.ip is [source.ip, 192.0.2.1]
    del events[3]["user"]
    store.write(events)
    store.refresh()
    buckets = store.aggregate(Query(), Aggregation("composite", fields=("user.name", "related.ip"), size=100))
    assert sorted((b.key, b.count) for b in buckets) == [
        (("user0", "10.1.0.1"), 1),
        (("user0", "192.0.2.1"), 1),
        (("user1", "10.1.1.2"), 1),
        (("user1", "192.0.2.1"), 1),
        (("user2", "10.1.2.3"), 1),
        (("user2", "192.0.2.1"), 1),
    ]
    two = store.aggregate(Query(), Aggregation("composite", fields=("user.name", "related.ip"), size=2))
    assert len(two) == 2  # capped at size: the caller sees it may be truncated


def make_legacy_file(path: Path, events: list[Event]) -> None:
    """A store file as the first release wrote it: without the newer columns, schema version 1."""
    store = SqliteEventStore(path)
    store.write(events)
    store.close()
    db = sqlite3.connect(path)
    for column in NEW_COLUMNS:
        db.execute(f"ALTER TABLE events DROP COLUMN {column}")
    db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.commit()
    db.close()


def meta(path: Path, key: str) -> str | None:
    db = sqlite3.connect(path)
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    db.close()
    return row[0] if row else None


def test_file_from_an_older_version_answers_the_same(tmp_path: Path) -> None:
    """Old rows keep NULL in the added columns and are read through their JSON; new rows use the
    columns; mixed, they answer exactly like a store that had the columns from the start."""
    old, new = flows()[:4], flows()[4:]
    path = tmp_path / "old.db"
    make_legacy_file(path, old)
    upgraded = SqliteEventStore(path)
    fresh = SqliteEventStore(tmp_path / "fresh.db")
    try:
        assert meta(path, "schema_version") == "3" and meta(path, "legacy_columns") is not None
        columns = {row[1] for row in upgraded._reader().execute("PRAGMA table_info(events)")}
        assert set(NEW_COLUMNS) <= columns
        nulls = upgraded._reader().execute("SELECT COUNT(*) FROM events WHERE source_bytes IS NULL").fetchone()[0]
        assert nulls == len(old)  # no backfill: nothing was rewritten
        assert upgraded.write(new).stored == len(new)
        fresh.write(old + new)
        assert answers(upgraded) == answers(fresh) == EXPECTED
    finally:
        upgraded.close()
        fresh.close()
    reopened = SqliteEventStore(path)  # a second open adds nothing and keeps the legacy mark
    try:
        assert answers(reopened) == EXPECTED
    finally:
        reopened.close()


def test_legacy_mark_is_dropped_once_retention_removed_the_old_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    make_legacy_file(path, [flow(i, "192.168.1.10", "203.0.113.5", 443, 100) for i in range(3)])
    store = SqliteEventStore(path)
    try:
        later = [flow(10 + i, "192.168.1.10", "203.0.113.5", 443, 100) for i in range(3)]
        store.write(later)
        assert meta(path, "legacy_columns") is not None
        cutoff = make_event(10)["@timestamp"]
        assert store.delete_older_than(parse_ts(cutoff)) == 3
        assert meta(path, "legacy_columns") is None
        assert store.count(Query((Term("destination.port", 443), Range("source.bytes", gte=100)))) == 3
    finally:
        store.close()


def early(event: Event) -> Event:
    """The event as if it happened in the first seconds of the sample: a late arrival."""
    event["@timestamp"] = make_event(int(event["event"]["id"][-5:]) % 100)["@timestamp"]
    return event


def test_span_scan_answers_like_the_indexes(tmp_path: Path, monkeypatch: Any) -> None:
    """Large ranges are read as a rowid span without indexes: same answers, late rows included,
    rows written after the span was cached included too; selective terms keep their index."""
    monkeypatch.setattr(sqlite_module, "_SCAN_MIN_ROWS", 0)  # the real threshold needs 20,000 rows
    store = SqliteEventStore(tmp_path / "events.db")
    try:
        hosts = [f"192.168.1.{10 + i % 40}" for i in range(400)]
        store.write([flow(i, hosts[i], f"203.0.113.{i % 7}", 443 + i % 3, 100 + i) for i in range(400)])
        store.write([early(flow(1000 + i, "192.168.9.9", "203.0.113.99", 22, 7)) for i in range(5)])  # late rows
        store.refresh()  # rows not indexed yet may hold any value: a term is selective once indexed
        start, end = parse_ts(make_event(0)["@timestamp"]), parse_ts(make_event(500)["@timestamp"])
        wide = Query((Term("event.dataset", "network_traffic.flow"),), start, end)
        narrow = wide.and_(Term("source.ip", "192.168.1.10"))
        assert store.scan_span(wide) is not None and store.scan_span(narrow) is None
        aggs = [
            Aggregation("terms", "source.ip", size=100, metric="distinct", metric_field="destination.port"),
            Aggregation("histogram", interval_seconds=60, metric="sum", metric_field="source.bytes"),
            Aggregation("composite", fields=("@timestamp", "destination.ip"), interval_seconds=120, size=1000),
        ]
        for agg in aggs:
            plain = aggregation_sql(wide, agg, {}, None)
            rows = store._reader().execute(plain.text, plain.params).fetchall()
            spanned = store.aggregate(wide, agg)
            assert len(spanned) == len(rows) and sum(b.count for b in spanned) == 405
        late = store.aggregate(wide.and_(Term("destination.port", 22)), Aggregation("terms", "source.ip"))
        assert [(b.key, b.count) for b in late] == [("192.168.9.9", 5)]
        store.write([early(flow(2000 + i, "192.168.9.8", "203.0.113.98", 22, 7)) for i in range(3)])  # after caching
        again = store.aggregate(wide.and_(Term("destination.port", 22)), Aggregation("terms", "source.ip"))
        assert [(b.key, b.count) for b in again] == [("192.168.9.9", 5), ("192.168.9.8", 3)]
    finally:
        store.close()


def test_composite_buckets_time_fields(store: EventStore) -> None:
    """A time field among the composite's fields is bucketed by interval_seconds, like a histogram."""
    store.write(flows())  # one event per second from BASE_TIME
    store.refresh()
    agg = Aggregation(
        "composite",
        fields=("@timestamp", "source.ip"),
        interval_seconds=2,
        size=100,
        metric="sum",
        metric_field="source.bytes",
    )
    buckets = store.aggregate(Query(), agg)
    start = BASE_TIME
    assert sorted((b.key, b.count, b.value) for b in buckets) == [
        ((start, "192.168.1.10"), 2, 10_900.0),
        ((start + timedelta(seconds=2), "192.168.1.10"), 1, 70.0),
        ((start + timedelta(seconds=2), "192.168.1.11"), 1, 5.0),
        ((start + timedelta(seconds=4), "192.168.1.11"), 1, 123_456.0),
        ((start + timedelta(seconds=4), "192.168.1.12"), 1, 50.0),
        ((start + timedelta(seconds=6), "192.168.1.12"), 1, 50.0),
    ]


def test_backfill_fills_legacy_rows_newest_first(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setattr(sqlite_module, "_BACKFILL_CHUNK", 3)
    path = tmp_path / "old.db"
    make_legacy_file(path, flows())  # 7 rows, two of them with arrays in promoted fields
    store = SqliteEventStore(path)
    try:
        db = store._reader()
        assert store.backfill_legacy(max_rows=3) == 3
        filled = db.execute("SELECT rowid FROM events WHERE source_zone IS NOT NULL ORDER BY rowid").fetchall()
        assert [r[0] for r in filled] == [5, 6, 7]  # the newest rows first
        assert meta(path, "legacy_columns") is not None
        assert answers(store) == EXPECTED  # half filled, half legacy: same answers
        assert store.backfill_legacy() == 4
        assert meta(path, "legacy_columns") is None
        assert answers(store) == EXPECTED
        rows = db.execute("SELECT destination_port, source_bytes, irregular FROM events ORDER BY rowid").fetchall()
        assert rows[0] == (443, 900, 0) and rows[5] == (None, 50, 1) and rows[6] == (80, None, 1)
    finally:
        store.close()
