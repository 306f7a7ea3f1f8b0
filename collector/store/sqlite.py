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
time anyway, and the lock turns contention into a wait instead of ``SQLITE_BUSY``). Batches that
arrive while a commit is running are committed together by the next writer (group commit): the
CPU cost of a commit is mostly writing every dirty page to the WAL, so it is shared instead of
paid per batch, and the more receivers are busy the bigger the transactions get. Reads use one
connection per thread, so the API's readers never wait for each other or for the writer.

Per event, the Python side costs one JSON encoding (orjson when installed) and a grouped lookup of
the promoted columns; the SQLite side is dominated by the secondary indexes, which is why only the
ones queries need are kept (see :data:`UNINDEXED_PROMOTED`).
"""

from __future__ import annotations

import contextlib
import logging
import re
import sqlite3
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
from soc_common.parsers.json_codec import dumps, loads

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
_SCALAR_TYPES = frozenset({str, int, float, bool})  # exact-type test first: cheaper than isinstance
# Hot fields kept as columns (filters on them skip JSON parsing) but not indexed. Every index costs
# write throughput: a (value, ts) index on a field whose values are spread over the key space dirties
# a page per distinct value in each batch, and each dirty page is a full page in the WAL at commit.
# Measured on 2,000-event batches, the eight per-field indexes together cost more than the table,
# the id index and the JSON encoding combined. Kept indexed: the pivots analysts and detectors look
# up across long periods (source/destination IP, user, host) and ``event.dataset`` (detectors select
# rare datasets, DNS or TLS, out of a flood of flows). Not indexed: the action/outcome pair (always
# combined with something more selective), ``event.code`` (always combined with its dataset, whose
# index finds the rows), and the low-cardinality ``soc.site`` / ``soc.agent_id``, which queries pair
# with a time range: the time index plus a column check reads the same rows the index would.
UNINDEXED_PROMOTED = frozenset({"event.action", "event.outcome", "event.code", "soc.site", "soc.agent_id"})
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
    for field, column in PROMOTED_COLUMNS.items():
        if field in UNINDEXED_PROMOTED:  # files created before the index set was trimmed
            statements.append(f"DROP INDEX IF EXISTS events_{column}")
        else:
            statements.append(
                f"CREATE INDEX IF NOT EXISTS events_{column} ON events ({column}, ts) WHERE {column} IS NOT NULL"
            )
    return statements


_PROMOTED_LIST = ", ".join(PROMOTED_COLUMNS.values())
_INSERT = (
    f"INSERT OR IGNORE INTO events (eid, ts, ingested, {_PROMOTED_LIST}, irregular, doc) "
    f"VALUES (?, ?, ?, {', '.join('?' * len(PROMOTED_COLUMNS))}, ?, ?)"
)
# A JSON key containing a dot: a dot, then string characters, then the quote that closes a key.
_DOTTED_KEY = re.compile(r'\.[^"\\]*":')


def _promoted_groups() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """The promoted paths grouped by top-level object, in column order: one dict lookup per group."""
    groups: dict[str, list[str]] = {}
    for name in PROMOTED_COLUMNS:
        top, _, rest = name.partition(".")
        if not rest or "." in rest:
            raise AssertionError(f"promoted field {name} must be object.field")
        groups.setdefault(top, []).append(rest)
    if [f"{top}.{sub}" for top, subs in groups.items() for sub in subs] != list(PROMOTED_COLUMNS):
        raise AssertionError("promoted columns must be grouped by top-level object")
    return tuple((top, tuple(subs)) for top, subs in groups.items())


_PROMOTED_GROUPS = _promoted_groups()
_NONES: dict[str, tuple[None, ...]] = {top: (None,) * len(subs) for top, subs in _PROMOTED_GROUPS}


def _promoted(doc: Event) -> tuple[list[Any], int]:
    """Column values of the promoted fields and the ``irregular`` flag (a non-scalar somewhere)."""
    values: list[Any] = []
    irregular = 0
    for top, subs in _PROMOTED_GROUPS:
        node = doc.get(top)
        if type(node) is not dict:
            if not isinstance(node, Mapping):
                values.extend(_NONES[top])
                continue
            node = dict(node)
        for sub in subs:
            value = node.get(sub)
            if value is None or (type(value) in _SCALAR_TYPES and type(value) is not int) or _bindable(value):
                values.append(value)
            else:
                values.append(None)
                irregular = 1
    return values, irregular


def _bindable(value: Any) -> bool:
    """A scalar SQLite can bind: integers must fit its 64 bits (bigger ones stay in the JSON only)."""
    if isinstance(value, bool | str | float):
        return True
    return isinstance(value, int) and _INT64_MIN <= value <= _INT64_MAX


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _dump(doc: Event) -> str:
    text = dumps(doc)
    if not text.isascii():  # O(1) flag check; only non-ASCII text can hold a lone surrogate
        text.encode("utf-8")  # UnicodeEncodeError (a ValueError) rejects this document alone
    return text


def _row(item: Prepared) -> tuple[Any, ...]:
    text = _dump(item.doc)
    doc = item.doc
    if _DOTTED_KEY.search(text):  # rare: half-flattened input; false positives only cost time
        doc = nest(doc)
        text = _dump(doc)
    promoted, irregular = _promoted(doc)
    return (item.event_id, item.timestamp_us, item.ingested_us, *promoted, irregular, text)


@dataclass(eq=False, slots=True)
class _Job:
    """One caller's rows waiting for the group commit, and what became of them."""

    rows: list[tuple[Any, ...]]
    stored: int = 0
    error: BaseException | None = None
    done: bool = False


class _Reader:
    """One thread's read connection, closed when that thread ends (its thread-locals are freed).

    Servers that start a thread per request would otherwise leave a connection, its file
    descriptors and its page cache behind for every request.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()

    def __del__(self) -> None:
        self.close()


class SqliteEventStore(EventStore):
    """Events in a single SQLite file (WAL, one writer, per-thread readers)."""

    name = "sqlite"

    def __init__(self, path: Path | str, *, retention_days: int = 90) -> None:
        self.path = Path(path)
        self.retention_days = retention_days
        self._write_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_Job] = []
        self._local = threading.local()
        self._readers: weakref.WeakSet[_Reader] = weakref.WeakSet()
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
        reader: _Reader | None = getattr(self._local, "reader", None)
        if reader is None:
            try:
                reader = _Reader(self._connect())
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: {exc}") from exc
            self._local.reader = reader
            with self._readers_lock:
                self._readers.add(reader)
        return reader.conn

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
        stored = self._commit(rows)
        result.stored = stored
        result.duplicates = len(rows) - stored
        return result

    def _commit(self, rows: list[tuple[Any, ...]]) -> int:
        """Insert ``rows`` durably, sharing one transaction with batches that arrived meanwhile.

        Group commit: while one thread holds the writer, others queue their rows; the next thread to
        get the writer commits everything queued in one transaction. Each batch still returns only
        after the fsync that covers it, but concurrent receivers pay one WAL sync, and each dirty
        index page is written once for all of them instead of once per batch.
        """
        if self._closed:
            raise StoreError("event store is closed")
        job = _Job(rows)
        with self._queue_lock:
            self._queue.append(job)
        with self._write_lock:
            if not job.done:
                with self._queue_lock:
                    jobs, self._queue = self._queue, []
                self._run_jobs(jobs)
        if job.error is not None:
            raise StoreError(f"{self.path}: write failed: {job.error}") from job.error
        return job.stored

    def _run_jobs(self, jobs: list[_Job]) -> None:
        """One transaction for ``jobs``; on any failure every job in it fails (none is half-stored)."""
        try:
            self._writer.execute("BEGIN IMMEDIATE")
            try:
                for job in jobs:
                    job.stored = self._writer.executemany(_INSERT, job.rows).rowcount
                self._writer.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    self._writer.execute("ROLLBACK")
                raise
        except BaseException as exc:
            for job in jobs:
                job.error, job.stored = exc, 0
            if not isinstance(exc, Exception):
                raise
        finally:
            for job in jobs:
                job.done = True

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
        return SearchPage([loads(row[2]) for row in rows], total, next_cursor)

    def get(self, event_ids: Sequence[str]) -> list[Event]:
        wanted = list(dict.fromkeys(event_ids))
        found: dict[str, Event] = {}
        for start in range(0, len(wanted), _ID_CHUNK):
            chunk = wanted[start : start + _ID_CHUNK]
            marks = ",".join("?" * len(chunk))
            for eid, doc in self._read(f"SELECT eid, doc FROM events WHERE eid IN ({marks})", chunk):
                found[eid] = loads(doc)
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
            readers = list(self._readers)
            self._readers = weakref.WeakSet()
        own = getattr(self._local, "reader", None)
        self._local.reader = None
        for reader in readers:
            if reader is own:
                reader.close()
            else:
                # another thread may be mid-query: closing under it can crash the process, so stop
                # its query; the connection closes when that thread ends (see _Reader)
                with contextlib.suppress(sqlite3.Error):  # already closed by its own thread
                    reader.conn.interrupt()
        with self._write_lock:
            with contextlib.suppress(sqlite3.Error):
                self._writer.execute("PRAGMA optimize")
            self._writer.close()
