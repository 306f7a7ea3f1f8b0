"""The SQLite store's write path after the throughput work: group commit, index set, promoted columns."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from collector.store.base import Query, StoreError, Term
from collector.store.sqlite import SqliteEventStore, _promoted
from collector.store.sqlite_query import PROMOTED_COLUMNS
from soc_common.ecs import Event


def _event(i: int, **extra: Any) -> Event:
    return {
        "@timestamp": f"2024-06-01T00:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
        "event": {"id": f"ev-{i}", "dataset": "system.auth", "code": str(i % 3)},
        "source": {"ip": f"10.0.{i % 7}.{i % 200}"},
        "user": {"name": f"user{i % 5}"},
        "soc": {"site": f"site-{i % 2}", "agent_id": f"agent-{i % 4}"},
        **extra,
    }


def _index_names(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'")
        return {r[0] for r in rows if not r[0].startswith("sqlite_autoindex")}


def test_concurrent_writers_share_commits_and_count_each_batch_exactly(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "events.db")
    threads, per_thread, batch = 6, 600, 100
    results: list[tuple[int, int]] = []
    lock = threading.Lock()

    def writer(k: int) -> None:
        # Every thread writes ids 0..299 (shared, so most are duplicates across threads) and its own.
        for start in range(0, per_thread, batch):
            events = [_event(i) if i < 300 else _event(k * 10_000 + i) for i in range(start, start + batch)]
            result = store.write(events)
            assert not result.errors
            with lock:
                results.append((result.stored, result.duplicates))

    workers = [threading.Thread(target=writer, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stored = sum(s for s, _ in results)
    duplicates = sum(d for _, d in results)
    expected_unique = 300 + threads * (per_thread - 300)
    assert stored == expected_unique == store.count(Query())
    assert stored + duplicates == threads * per_thread
    store.close()


def test_a_failed_group_commit_fails_every_batch_in_it(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "events.db")
    store.write([_event(1)])
    blocker = sqlite3.connect(tmp_path / "events.db", timeout=0)
    blocker.execute("BEGIN IMMEDIATE")  # holds the write lock: the store's BEGIN cannot proceed
    store._writer.execute("PRAGMA busy_timeout = 50")
    try:
        with pytest.raises(StoreError, match="write failed"):
            store.write([_event(2)])
    finally:
        blocker.rollback()
        blocker.close()
    assert store.write([_event(2)]).stored == 1  # the store recovers once the lock is gone
    store.close()


def test_events_keep_only_append_local_indexes_and_old_files_are_trimmed(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    SqliteEventStore(path).close()
    with sqlite3.connect(path) as conn:  # an older file with the per-row pivot indexes of 0.2
        conn.execute("CREATE INDEX events_site ON events (site, ts) WHERE site IS NOT NULL")
        conn.execute("CREATE INDEX events_source_ip ON events (source_ip, ts) WHERE source_ip IS NOT NULL")
    SqliteEventStore(path).close()
    assert _index_names(path) == {"events_ts", "events_ingested", "events_irregular"}
    with sqlite3.connect(path) as conn:
        unique = [row[2] for row in conn.execute("PRAGMA index_list(events)") if row[1] == "events_ts"]
    assert unique == [1]  # (ts, eid) is the identity that refuses duplicates


def test_a_pivot_is_found_through_its_chunk_index_and_in_the_tail(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "events.db")
    store.write([_event(i) for i in range(200)])
    query = Query((Term("source.ip", "10.0.1.1"),))
    expected = len([i for i in range(200) if (i % 7, i % 200) == (1, 1)])
    assert store.count(query) == expected  # nothing indexed yet: the tail answers
    store.refresh()
    store.write([_event(i) for i in range(200, 260)])  # a new tail after the chunk
    expected += len([i for i in range(200, 260) if (i % 7, i % 200) == (1, 1)])
    assert store._plan(query).drive is not None
    page = store.search(query, size=500)
    assert page.total == len(page.events) == expected
    assert {e["source"]["ip"] for e in page.events} == {"10.0.1.1"}
    store.close()


@pytest.mark.parametrize(
    ("doc", "irregular"),
    [
        (_event(1), 0),
        ({"event": {"id": "x", "code": ["4624", "4625"]}, "@timestamp": "2024-06-01T00:00:00.000Z"}, 1),
        ({"event": "not an object", "user": {"name": {"first": "a"}}}, 1),
        ({"host": ["a", "b"], "soc": {"site": 3}}, 0),
    ],
)
def test_promoted_columns_match_a_plain_lookup(doc: Event, irregular: int) -> None:
    values, flag = _promoted(doc)
    expected: list[Any] = []
    for field in PROMOTED_COLUMNS:
        top, sub = field.split(".")
        node = doc.get(top)
        value = node.get(sub) if isinstance(node, dict) else None
        scalar = isinstance(value, str | float | bool) or (isinstance(value, int) and abs(value) < 2**63)
        expected.append(value if value is None or scalar else None)
    assert values == expected
    assert flag == irregular


def test_unindexed_hot_fields_still_filter_exactly(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "events.db")
    store.write([_event(i) for i in range(90)])
    assert store.count(Query((Term("soc.site", "site-1"),))) == 45
    assert store.count(Query((Term("soc.agent_id", ["agent-0", "agent-1"]),))) == 46
    assert store.count(Query((Term("event.code", "2"),))) == 30
    store.close()


def test_documents_sqlite_cannot_bind_are_handled_per_document(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "events.db")
    huge = _event(1)
    huge["user"]["name"] = 2**70  # too big for a 64-bit column: kept in the JSON only
    lone = _event(2, message="bad \udc80 text")  # cannot be encoded as UTF-8
    result = store.write([huge, lone, _event(3)])
    assert result.stored == 2
    assert [pos for pos, _ in result.errors] == [1]
    [got] = store.get(["ev-1"])
    assert got["user"]["name"] == 2**70
    store.close()


def test_batches_larger_than_one_statement_count_duplicates_across_statements(tmp_path: Path) -> None:
    store = SqliteEventStore(tmp_path / "events.db")
    try:
        batch = [_event(i) for i in range(1203)]  # three statements: 500 + 500 + 203 rows
        batch[700] = dict(batch[10])  # a duplicate of a row in the first statement
        batch[1202] = dict(batch[600])  # and one of a row in the second
        result = store.write(batch)
        assert (result.stored, result.duplicates) == (1201, 2)
        again = store.write(batch[450:560])  # straddles the first boundary, all already stored
        assert (again.stored, again.duplicates) == (0, 110)
        assert store.count(Query()) == 1201
    finally:
        store.close()
