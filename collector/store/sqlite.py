"""The embedded event store: one SQLite file, for single-machine installations and tests.

Layout: one ``events`` row per event with the full ECS document as JSON text, integer
epoch-microsecond columns for ``@timestamp`` (``ts``) and ``event.ingested`` (``ingested``), and
indexed columns for the hot fields (see :mod:`collector.store.sqlite_query`); any other field is
reached through ``json_each`` on the document.

Durability: the database runs in WAL mode with ``synchronous=FULL``. A batch is one transaction, so
``write`` costs one WAL append and one fsync per batch, and when it returns the batch survives a
crash or a power cut (``NORMAL`` would only survive a process crash, which is not what the contract
promises the collector before it acknowledges the agents). WAL also lets readers run while a write
is in progress.

Threads: writes go through a single writer connection behind a lock (SQLite admits one writer at a
time anyway, and the lock turns contention into a wait instead of ``SQLITE_BUSY``). Reads use one
connection per thread, so the API's readers never wait for each other or for the writer.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sqlite3
import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from collector.store.base import (
    Aggregation,
    Bucket,
    EventStore,
    Query,
    SearchPage,
    StoreError,
    WriteResult,
)
from collector.store.documents import (
    Prepared,
    decode_cursor,
    encode_cursor,
    from_epoch_us,
    lookup,
    nest,
    prepare,
    to_epoch_us,
)
from collector.store.sqlite_query import (
    PROMOTED_COLUMNS,
    TIME_COLUMNS,
    aggregation_sql,
    compile_where,
)
from soc_common.ecs import Event

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_SCALARS = (str, int, float, bool)
# Low-cardinality fields kept as columns (filters on them skip JSON parsing) but not indexed: an
# index on them would cost write throughput and never beat the time index.
UNINDEXED_PROMOTED = frozenset({"event.action", "event.outcome"})
_DELETE_CHUNK = 20_000
_ID_CHUNK = 500


def _schema() -> list[str]:
    promoted = ",\n  ".join(f"{column} TEXT" for column in PROMOTED_COLUMNS.values())
    statements = [
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"""CREATE TABLE IF NOT EXISTS events (
  rowid INTEGER PRIMARY KEY,
  eid TEXT NOT NULL UNIQUE,
  ts INTEGER NOT NULL,
  ingested INTEGER,
  {promoted},
  irregular INTEGER NOT NULL DEFAULT 0,
  doc TEXT NOT NULL
)""",
        "CREATE INDEX IF NOT EXISTS events_ts ON events (ts, eid)",
        "CREATE INDEX IF NOT EXISTS events_ingested ON events (ingested) WHERE ingested IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS events_irregular ON events (irregular) WHERE irregular = 1",
    ]
    statements += [
        f"CREATE INDEX IF NOT EXISTS events_{column} ON events ({column}, ts) WHERE {column} IS NOT NULL"
        for field, column in PROMOTED_COLUMNS.items()
        if field not in UNINDEXED_PROMOTED
    ]
    return statements


_PROMOTED_LIST = ", ".join(PROMOTED_COLUMNS.values())
_INSERT = (
    f"INSERT OR IGNORE INTO events (eid, ts, ingested, {_PROMOTED_LIST}, irregular, doc) "
    f"VALUES (?, ?, ?, {', '.join('?' * len(PROMOTED_COLUMNS))}, ?, ?)"
)
# A JSON key containing a dot: a dot, then string characters, then the quote that closes a key.
_DOTTED_KEY = re.compile(r'\.[^"\\]*":')
_PROMOTED_PATHS = tuple(tuple(name.split(".")) for name in PROMOTED_COLUMNS)


def _dump(doc: Event) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str)


def _row(item: Prepared) -> tuple[Any, ...]:
    text = _dump(item.doc)
    doc = item.doc
    if _DOTTED_KEY.search(text):  # rare: half-flattened input; false positives only cost time
        doc = nest(doc)
        text = _dump(doc)
    irregular = 0
    promoted: list[Any] = []
    for parts in _PROMOTED_PATHS:
        value = lookup(doc, parts)
        if value is None or isinstance(value, _SCALARS):
            promoted.append(value)
        else:
            promoted.append(None)
            irregular = 1
    return (item.event_id, item.timestamp_us, item.ingested_us, *promoted, irregular, text)


class SqliteEventStore(EventStore):
    """Events in a single SQLite file (WAL, one writer, per-thread readers)."""

    name = "sqlite"

    def __init__(self, path: Path | str, *, retention_days: int = 90) -> None:
        self.path = Path(path)
        self.retention_days = retention_days
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._writer = self._connect()
            mode = self._writer.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.path}: cannot enable WAL journal mode (got {mode})")
            with self._writer:
                for statement in _schema():
                    self._writer.execute(statement)
                self._writer.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open event store: {exc}") from exc

    # -- connections -------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False, cached_statements=256
        )
        conn.execute("PRAGMA page_size = 16384")  # only effective on a new file; fewer, wider pages
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA cache_size = -65536")  # 64 MiB page cache per connection
        conn.execute("PRAGMA temp_store = MEMORY")
        return conn

    def _reader(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("event store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = self._connect()
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: {exc}") from exc
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._reader().execute(sql, tuple(params)).fetchall()
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{self.path}: query failed: {exc}") from exc

    # -- writing -----------------------------------------------------------------------------------

    def write(self, events: Sequence[Event]) -> WriteResult:
        result = WriteResult()
        rows: list[tuple[Any, ...]] = []
        for position, raw in enumerate(events):
            prepared = prepare(position, raw)
            if isinstance(prepared, str):
                result.errors.append((position, prepared))
                continue
            try:
                rows.append(_row(prepared))
            except (TypeError, ValueError) as exc:
                result.errors.append((position, f"not serialisable as JSON: {exc}"))
        if not rows:
            return result
        if self._closed:
            raise StoreError("event store is closed")
        with self._write_lock:
            try:
                self._writer.execute("BEGIN IMMEDIATE")
                try:
                    cur = self._writer.executemany(_INSERT, rows)
                    stored = cur.rowcount
                    self._writer.execute("COMMIT")
                except BaseException:
                    self._writer.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: write failed: {exc}") from exc
        result.stored = stored
        result.duplicates = len(rows) - stored
        return result

    # -- reading -----------------------------------------------------------------------------------

    def count(self, query: Query) -> int:
        where, params = compile_where(query)
        return int(self._read(f"SELECT COUNT(*) FROM events AS e WHERE {where}", params)[0][0])

    def search(self, query: Query, *, size: int = 100, cursor: str | None = None) -> SearchPage:
        where, params = compile_where(query)
        total: int
        if cursor is None:
            total = self.count(query)
            after: list[Any] | None = None
        else:
            try:
                total, ts, eid = decode_cursor(cursor)
                after = [int(ts), str(eid)]
                total = int(total)
            except (ValueError, TypeError) as exc:
                raise ValueError("malformed cursor") from exc
        sql = f"SELECT e.ts, e.eid, e.doc FROM events AS e WHERE {where}"
        if after is not None:
            sql += " AND (e.ts, e.eid) < (?, ?)"
            params = [*params, *after]
        size = max(int(size), 0)
        sql += " ORDER BY e.ts DESC, e.eid DESC LIMIT ?"
        rows = self._read(sql, [*params, size + 1])
        more = len(rows) > size
        rows = rows[:size]
        next_cursor = encode_cursor([total, rows[-1][0], rows[-1][1]]) if more and rows else None
        return SearchPage([json.loads(row[2]) for row in rows], total, next_cursor)

    def get(self, event_ids: Sequence[str]) -> list[Event]:
        wanted = list(dict.fromkeys(event_ids))
        found: dict[str, Event] = {}
        for start in range(0, len(wanted), _ID_CHUNK):
            chunk = wanted[start : start + _ID_CHUNK]
            marks = ",".join("?" * len(chunk))
            for eid, doc in self._read(f"SELECT eid, doc FROM events WHERE eid IN ({marks})", chunk):
                found[eid] = json.loads(doc)
        return [found[eid] for eid in wanted if eid in found]

    def aggregate(self, query: Query, agg: Aggregation) -> list[Bucket]:
        statement = aggregation_sql(query, agg)
        rows = self._read(statement.text, statement.params)
        with_metric = agg.kind in ("distinct", "sum") or agg.metric is not None
        key_is_time = agg.kind == "histogram" or (agg.kind == "terms" and agg.field in TIME_COLUMNS)
        buckets = []
        for key, count, metric in rows:
            if key is not None and key_is_time:
                key = from_epoch_us(int(key))
            value = float(metric) if with_metric and metric is not None else (0.0 if with_metric else None)
            buckets.append(Bucket(key, int(count), value))
        return buckets

    # -- retention and status ----------------------------------------------------------------------

    def delete_older_than(self, cutoff: datetime) -> int:
        """Delete in chunks so a large purge never blocks the writers for long.

        Freed pages are reused by the next writes (no auto-vacuum: its pointer maps halve insert
        throughput), so the file stops growing once retention is in steady state.
        """
        limit = to_epoch_us(cutoff)
        deleted = 0
        while True:
            with self._write_lock:
                try:
                    with self._writer:
                        cur = self._writer.execute(
                            "DELETE FROM events WHERE rowid IN "
                            "(SELECT rowid FROM events WHERE ts < ? ORDER BY ts LIMIT ?)",
                            (limit, _DELETE_CHUNK),
                        )
                except sqlite3.Error as exc:
                    raise StoreError(f"{self.path}: retention delete failed: {exc}") from exc
            deleted += cur.rowcount
            if cur.rowcount < _DELETE_CHUNK:
                break
        if deleted:
            with self._write_lock:
                try:
                    self._writer.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:
                    log.warning("post-retention checkpoint failed on %s: %s", self.path, exc)
        return deleted

    def apply_retention(self, now: datetime | None = None) -> int:
        """Drop events older than ``retention_days``; the collector calls this periodically."""
        now = now or datetime.now(UTC)
        return self.delete_older_than(now - timedelta(days=self.retention_days))

    def health(self) -> dict[str, Any]:
        try:
            count, oldest, newest = self._read("SELECT COUNT(*), MIN(ts), MAX(ts) FROM events")[0]
        except StoreError as exc:
            return {"store": self.name, "reachable": False, "error": str(exc), "path": str(self.path)}
        size = sum(
            p.stat().st_size for p in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")) if p.exists()
        )
        return {
            "store": self.name,
            "reachable": True,
            "path": str(self.path),
            "count": int(count),
            "size_bytes": size,
            "oldest": from_epoch_us(oldest).isoformat() if oldest is not None else None,
            "newest": from_epoch_us(newest).isoformat() if newest is not None else None,
            "retention_days": self.retention_days,
        }

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in readers:
            conn.close()
        with self._write_lock:
            with contextlib.suppress(sqlite3.Error):
                self._writer.execute("PRAGMA optimize")
            self._writer.close()
