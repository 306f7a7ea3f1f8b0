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

Files created by an older version get the newer promoted columns at open (``ALTER TABLE ADD
COLUMN``, instant: no row is rewritten); the rows already there keep NULL in them and queries read
those rows' values from the JSON document (see :data:`collector.store.sqlite_query.Legacy`). The
periodic retention run then fills them in bounded chunks, newest first (:meth:`backfill_legacy`),
so the rows detectors read become fast within an hour without one long rewrite at start-up.

Per event, the Python side costs one JSON encoding (orjson when installed) and a grouped lookup of
the promoted columns; the SQLite side is the row and its (ts, eid) identity, both appended near the
end of their trees. The pivot fields are indexed behind the writes, in sorted chunks, by a
maintenance thread (see :mod:`collector.store.sqlite_index`): per-row indexes on them made a write
cost grow with the history the file holds (86 µs per event at a million rows, 10 µs this way).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from collector.sqlite_tx import immediate_transaction
from collector.store import sqlite_index as ix
from collector.store.base import (
    Aggregation,
    Bucket,
    EventStore,
    Query,
    SearchPage,
    StoreError,
    Term,
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
    TEXT_COLUMNS,
    TIME_COLUMNS,
    Legacy,
    Span,
    aggregation_sql,
    compile_where,
    json_path,
)
from collector.store.write_lock import WriteLock
from soc_common.ecs import Event
from soc_common.parsers.json_codec import dumps, loads

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3  # 2: the reason, byte, port and zone columns; 3: chunk indexes, (ts, eid) identity
# Hot fields are columns (filters on them skip JSON parsing). None has a per-row SQLite index: the
# pivots analysts and detectors look up across long periods (ids, addresses, users, hosts, dataset)
# are indexed in chunks behind the writes (collector.store.sqlite_index); the rest (action, outcome,
# code, site, agent, the flow fields) always come with a time range or a pivot, so the time index
# or the chunk index finds the rows and a column check filters them.
_LEGACY_KEY = "legacy_columns"  # meta key: JSON {column: first rowid written with it}
_DELETE_CHUNK = 20_000
# Index lookups per row cost about this many rows of sequential reading (measured on flows: 1.7 s
# against 0.45 s per million); below _SCAN_MIN_ROWS the plan hardly matters and the probe is skipped.
_LOOKUP_COST = 4
_SCAN_MIN_ROWS = 20_000
_SPAN_CACHE = 256
_BACKFILL_CHUNK = 20_000
_ID_CHUNK = 500
_MAINTAIN_SECONDS = 0.5
# Page cache per connection. The writer's cache holds the index pages every batch dirties, so it is
# kept large; readers are one per thread (the API and /health answer on a thread per request, and
# a few threads live long), and each reader's cache fills up to its limit with what it read and
# stays allocated as long as the connection: 64 MiB per reader added up to hundreds of MiB.
WRITER_CACHE_KIB = 64 * 1024
# A writer that leaves indexing and merging to another process (an ingest worker) only appends: the
# pages a batch dirties are the last few of the table and of its (ts, eid) index.
APPEND_CACHE_KIB = 16 * 1024
INDEX_BUSY_MS = 1000
READER_CACHE_KIB = 8 * 1024


def _declaration(column: str) -> str:
    return f"{column} TEXT" if column in TEXT_COLUMNS else column


def _tables() -> list[str]:
    promoted = ",\n  ".join(_declaration(column) for column in PROMOTED_COLUMNS.values())
    return [
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"""CREATE TABLE IF NOT EXISTS events (
  rowid INTEGER PRIMARY KEY,
  eid TEXT NOT NULL,
  ts INTEGER NOT NULL,
  ingested INTEGER,
  {promoted},
  irregular INTEGER NOT NULL DEFAULT 0,
  doc TEXT NOT NULL
)""",
    ]


def _indexes() -> list[str]:
    # (ts, eid) is the identity: a resent event carries the same time and id. Files from before
    # SCHEMA_VERSION 3 keep their UNIQUE eid and a plain events_ts (IF NOT EXISTS leaves it), which
    # still refuses every duplicate, only at the old write cost.
    statements = [
        "CREATE UNIQUE INDEX IF NOT EXISTS events_ts ON events (ts, eid)",
        "CREATE INDEX IF NOT EXISTS events_ingested ON events (ingested) WHERE ingested IS NOT NULL",
        "CREATE INDEX IF NOT EXISTS events_irregular ON events (irregular) WHERE irregular = 1",
    ]
    for column in PROMOTED_COLUMNS.values():  # files from before the chunk indexes (sqlite_index)
        statements.append(f"DROP INDEX IF EXISTS events_{column}")
    return statements


_PROMOTED_LIST = ", ".join(PROMOTED_COLUMNS.values())
_INSERT_HEAD = f"INSERT OR IGNORE INTO events (eid, ts, ingested, {_PROMOTED_LIST}, irregular, doc) VALUES "
_ROW_MARKS = "(" + ", ".join("?" * (len(PROMOTED_COLUMNS) + 5)) + ")"
# Rows go in as multi-row INSERTs of up to this many rows: one statement step (one release of the
# GIL) per statement instead of per row. With executemany, every row's step gives the GIL away and
# has to win it back from whichever thread is busy in Python meanwhile (receivers, detection): with
# one such thread, 2,000-row batches took 200 µs of wall time per row instead of 7.
#
# A write that fits one statement runs it without BEGIN/COMMIT (SQLite commits it on its own):
# one GIL round trip for the whole transaction instead of four. Under the write lock every round
# trip waits for the GIL behind the receivers' threads (a switch interval, 5 ms, each time), which
# doubled the time ingest workers held the lock. 1,500 rows of 21 values stay within SQLite's
# default limit of 32,766 variables, and an agent's batch (1,000 events by default) fits.
_ROWS_PER_STATEMENT = min(1500, 32_766 // (len(PROMOTED_COLUMNS) + 5))  # 1,500 while there are 21 values


@functools.lru_cache(maxsize=64)
def _insert_rows(count: int) -> str:
    """The INSERT of ``count`` rows (the full-size one and the few remainders stay cached)."""
    return _INSERT_HEAD + ", ".join([_ROW_MARKS] * count)


def _statements(rows: list[tuple[Any, ...]]) -> list[tuple[str, list[Any]]]:
    """``rows`` as multi-row INSERTs with their flat parameters, built before the write lock is taken:
    the lock holder then only binds and steps, and shares the GIL with the receivers for less time."""
    out = []
    for start in range(0, len(rows), _ROWS_PER_STATEMENT):
        part = rows[start : start + _ROWS_PER_STATEMENT]
        out.append((_insert_rows(len(part)), [value for row in part for value in row]))
    return out


def _insert(conn: sqlite3.Connection, statements: list[tuple[str, list[Any]]]) -> int:
    """Run :func:`_statements` (duplicates ignored); return how many rows were stored."""
    stored = 0
    for sql, params in statements:
        stored += conn.execute(sql, params).rowcount
    return stored


def _lock_busy(exc: BaseException) -> bool:
    """SQLite gave up waiting for another connection's lock (``database is locked``)."""
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


# A JSON key containing a dot: its last dot, then string characters, then the quote that closes a
# key. Stopping the scan at the next dot keeps dotted values (addresses, times) cheap to skip.
_DOTTED_KEY = re.compile(r'\.[^".\\]*":')


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
            if node is None or not isinstance(node, Mapping):  # None first: an ABC check costs 0.15 µs
                values.extend(_NONES[top])
                continue
            node = dict(node)
        for sub in subs:
            value = node.get(sub)
            kind = type(value)
            if kind is str or value is None or (kind is int and _INT64_MIN <= value <= _INT64_MAX):
                values.append(value)  # exact-type tests first: the common cases, cheapest
            elif _bindable(value):
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


# Python's sqlite3 binds only exact int, float, str and bytearray directly; anything else, None
# included, goes through its adaptation protocol (a registry lookup keyed by a new tuple, then two
# attribute probes), about 250 ns per value. Most promoted columns of a row are NULL, so that was
# 2-4 µs of every row's insert. A registered adapter is found by the first lookup; it returns
# None, which binds as NULL exactly as before. The adapter is the ``get`` of a dict that stays
# empty: a C call that answers None, 35 ns a value less than a Python function (0.7 µs a row).
# The registry is per process (harmless: same result).
_NOTHING: dict[None, None] = {}
sqlite3.register_adapter(type(None), _NOTHING.get)


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


Clause = tuple[str, list[Any]]


@dataclass(frozen=True)
class _Plan:
    drive: Clause | None = None  # SQL of candidate rowids from a chunk index, and its parameters
    span: Span | None = None  # rowids to read in order instead of through indexes


@dataclass(eq=False, slots=True)
class _Job:
    """One caller's rows waiting for the group commit, and what became of them."""

    statements: list[tuple[str, list[Any]]]
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

    def __init__(self, path: Path | str, *, retention_days: int = 90, maintain: bool = True) -> None:
        """``maintain``: run the thread that indexes and merges chunks. Only the writer (the
        collector) needs it; readers of the same file (the SOC API, ``soc doctor``) read the tail."""
        self.path = Path(path)
        self.retention_days = retention_days
        in_file = str(self.path) != ":memory:"
        if in_file:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = WriteLock(self.path if in_file else None)
        self._queue_lock = threading.Lock()
        self._queue: list[_Job] = []
        self._local = threading.local()
        self._readers: weakref.WeakSet[_Reader] = weakref.WeakSet()
        self._readers_lock = threading.Lock()
        self._closed = False
        self._spans: dict[tuple[int, int], tuple[int, int, int, int]] = {}  # see _time_span
        self._spans_lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._ix_conn: sqlite3.Connection | None = None
        try:
            self._writer = self._connect(WRITER_CACHE_KIB if maintain else APPEND_CACHE_KIB)
            mode = self._writer.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.path}: cannot enable WAL journal mode (got {mode})")
            with self._write_lock, self._writer:  # workers open the file at the same moment
                for statement in _tables():
                    self._writer.execute(statement)
                self._add_missing_columns()
                for statement in _indexes():
                    self._writer.execute(statement)
                for statement in ix.schema():
                    self._writer.execute(statement)
                self._writer.execute(
                    "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (str(SCHEMA_VERSION),),
                )
                self._legacy: Legacy = self._load_legacy()
            newest = self._writer.execute("SELECT COALESCE(MAX(rowid), 0) FROM events").fetchone()[0]
            self._indexer = ix.Indexer(pending=max(int(newest) - ix.indexed_upto(self._writer), 0))
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: cannot open event store: {exc}") from exc
        self._stop = threading.Event()
        self._maintainer = threading.Thread(target=self._maintain_loop, name="store-index", daemon=True)
        if maintain:
            self._maintainer.start()

    # -- schema upgrades ---------------------------------------------------------------------------

    def _add_missing_columns(self) -> None:
        """Promoted columns a file from an older version lacks; its rows stay as they are.

        A one-off backfill would rewrite every row (the whole file) while the collector waits; the
        rows below the recorded rowid are read through their JSON instead, and age out by retention.
        """
        present = {row[1] for row in self._writer.execute("PRAGMA table_info(events)")}
        missing = [column for column in PROMOTED_COLUMNS.values() if column not in present]
        if not missing:
            return
        with immediate_transaction(self._writer):  # the columns and their legacy mark, or neither
            top = self._writer.execute("SELECT MAX(rowid) FROM events").fetchone()[0]
            for column in missing:
                self._writer.execute(f"ALTER TABLE events ADD COLUMN {_declaration(column)}")
            if top is not None:
                legacy = self._stored_legacy()
                legacy.update({column: int(top) + 1 for column in missing})
                self._save_legacy(legacy)
        log.info("%s: added columns %s; older rows are read through their JSON", self.path, missing)

    def _stored_legacy(self) -> dict[str, int]:
        row = self._writer.execute("SELECT value FROM meta WHERE key = ?", (_LEGACY_KEY,)).fetchone()
        return {str(k): int(v) for k, v in json.loads(row[0]).items()} if row else {}

    def _save_legacy(self, legacy: dict[str, int]) -> None:
        if legacy:
            self._writer.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (_LEGACY_KEY, json.dumps(legacy, sort_keys=True)),
            )
        else:
            self._writer.execute("DELETE FROM meta WHERE key = ?", (_LEGACY_KEY,))

    def _load_legacy(self) -> Legacy:
        """The recorded legacy columns, minus those whose older rows retention has deleted since."""
        legacy = self._stored_legacy()
        if not legacy:
            return {}
        oldest = self._writer.execute("SELECT MIN(rowid) FROM events").fetchone()[0]
        current = {c: since for c, since in legacy.items() if oldest is not None and oldest < since}
        if current != legacy:
            self._save_legacy(current)
        return current

    # -- connections -------------------------------------------------------------------------------

    def _connect(self, cache_kib: int = WRITER_CACHE_KIB) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False, cached_statements=256
        )
        conn.execute("PRAGMA page_size = 16384")  # only effective on a new file; fewer, wider pages
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute(f"PRAGMA cache_size = -{int(cache_kib)}")  # negative: KiB, not pages
        conn.execute("PRAGMA temp_store = MEMORY")
        return conn

    def _reader(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("event store is closed")
        reader: _Reader | None = getattr(self._local, "reader", None)
        if reader is None:
            try:
                reader = _Reader(self._connect(READER_CACHE_KIB))
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
        job = _Job(_statements(rows))
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
            if len(jobs) == 1 and len(jobs[0].statements) == 1:
                jobs[0].stored = _insert(self._writer, jobs[0].statements)  # its own transaction
            else:
                with immediate_transaction(self._writer):
                    for job in jobs:
                        job.stored = _insert(self._writer, job.statements)
            self._indexer.wrote(sum(job.stored for job in jobs))
        except BaseException as exc:
            # Without its traceback: the traceback's frames lead back (f_back) to the callers that keep
            # the error, a reference cycle holding every row of the failed write until the cyclic GC
            # runs, which is only every few seconds here (collector.gc_clock).
            exc.with_traceback(None)
            if _lock_busy(exc):
                # Batches queued while this one waited out the busy timeout would each wait it out
                # again behind it (an agent's request then outlives its own timeout instead of being
                # answered 503): the store is unavailable for them too, now.
                with self._queue_lock:
                    jobs, self._queue = jobs + self._queue, []
            for job in jobs:
                job.error, job.stored = exc, 0
            if not isinstance(exc, Exception):
                raise
        finally:
            for job in jobs:
                job.done = True

    # -- chunk indexes -----------------------------------------------------------------------------

    def _maintain_loop(self) -> None:
        """Index the tail when due and merge small chunks, one short write transaction at a time.

        On its own thread: SQLite releases the GIL while it sorts and writes, so on a machine with
        a free core the indexing overlaps the receivers' Python work instead of adding to it.
        """
        failing_since: float | None = None
        while not self._stop.wait(_MAINTAIN_SECONDS):
            try:
                self._notice_other_writers()
                self.index_pending(merge_rows=ix.SMALL_CHUNK_ROWS)
            except (sqlite3.Error, StoreError) as exc:  # the rows are stored; the tail just stays longer
                if failing_since is None:  # once per outage, not twice a second
                    failing_since = time.monotonic()
                    log.warning("%s: indexing failed (retrying quietly until it works): %s", self.path, exc)
                continue
            if failing_since is not None:
                log.warning("%s: indexing works again after %.0f s", self.path, time.monotonic() - failing_since)
                failing_since = None

    def _notice_other_writers(self) -> None:
        """Count rows other processes wrote (the collector's ingest workers) as pending here too."""
        with self._index_lock:  # the indexing connection: no reader kept for the maintenance thread
            if self._closed:
                return
            conn = self._index_connection()
            newest = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM events").fetchone()[0]
            self._indexer.pending = max(self._indexer.pending, int(newest) - ix.indexed_upto(conn))

    def index_pending(self, *, force: bool = False, merge_rows: int = ix.MERGE_MAX_ROWS) -> int:
        """Index the rows written since the last run (when due, or ``force``); return rows indexed.

        Then one merge of small chunks whose total is at most ``merge_rows`` (the maintenance thread
        keeps merges short; retention runs the big ones).
        """
        done = 0
        with self._index_lock:
            while not self._closed and (force or self._indexer.due()):
                covered = self._indexer.run(self._index_connection(), self._write_lock)
                done += covered
                if covered < ix.RUN_MAX_ROWS:
                    break
            if not self._closed:
                with self._write_lock:
                    ix.merge_once(self._index_connection(), max_rows=merge_rows)
        return done

    def _index_connection(self) -> sqlite3.Connection:
        """The connection that indexes (its temp tables hold a run being prepared); under _index_lock."""
        if self._ix_conn is None:
            self._ix_conn = self._connect(READER_CACHE_KIB)
            # Indexing is deferrable; the receivers' writes are not. Another program holding the
            # file's write lock (a backup, a sqlite3 shell) must fail this connection's runs fast,
            # or the receivers would queue behind it for its busy timeout and then their own.
            self._ix_conn.execute(f"PRAGMA busy_timeout = {INDEX_BUSY_MS}")
        return self._ix_conn

    def compact_index(self) -> int:
        """Every merge that is due, each under the write lock on its own; return how many."""
        merges = 0
        while not self._closed:
            with self._write_lock:
                if self._closed or not ix.merge_once(self._writer):
                    break
            merges += 1
        return merges

    def refresh(self) -> None:
        """Index everything written so far (tests and benchmarks; queries see the tail anyway)."""
        self.index_pending(force=True)

    # -- reading -----------------------------------------------------------------------------------

    def count(self, query: Query) -> int:
        table, where, params = self._where(query, self._plan(query).drive)
        return int(self._read(f"SELECT COUNT(*) FROM {table} WHERE {where}", params)[0][0])

    def _where(self, query: Query, drive: Clause | None) -> tuple[str, str, list[Any]]:
        """FROM target, WHERE text and parameters; a driven query reads its candidates by rowid only
        (NOT INDEXED: otherwise SQLite may walk the time index for the order and test every row)."""
        where, params = compile_where(query, self._legacy)
        if drive is None:
            return "events AS e", where, params
        return "events AS e NOT INDEXED", f"e.rowid IN ({drive[0]}) AND {where}", [*drive[1], *params]

    def search(self, query: Query, *, size: int = 100, cursor: str | None = None) -> SearchPage:
        table, where, params = self._where(query, self._plan(query).drive)
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
        sql = f"SELECT e.ts, e.eid, e.doc FROM {table} WHERE {where}"
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
            rows, params = ix.candidates("eid", chunk, None, None, irregular=False)
            sql = f"SELECT eid, doc FROM events NOT INDEXED WHERE rowid IN ({rows}) AND eid IN ({marks})"
            for eid, doc in self._read(sql, [*params, *chunk]):
                found[eid] = loads(doc)
        return [found[eid] for eid in wanted if eid in found]

    def aggregate(self, query: Query, agg: Aggregation) -> list[Bucket]:
        plan = self._plan(query, for_scan=True)
        statement = aggregation_sql(query, agg, self._legacy, plan.span, plan.drive)
        rows = self._read(statement.text, statement.params)
        with_metric = agg.kind in ("distinct", "sum") or agg.metric is not None
        if agg.kind == "composite":
            times = [f in TIME_COLUMNS for f in agg.fields]
            return [
                Bucket(
                    tuple(from_epoch_us(int(k)) if t else k for k, t in zip(row[:-2], times, strict=True)),
                    int(row[-2]),
                    (float(row[-1] or 0.0) if with_metric else None),
                )
                for row in rows
            ]
        key_is_time = agg.kind == "histogram" or (agg.kind == "terms" and agg.field in TIME_COLUMNS)
        buckets = []
        for key, count, metric in rows:
            if key is not None and key_is_time:
                key = from_epoch_us(int(key))
            value = float(metric) if with_metric and metric is not None else (0.0 if with_metric else None)
            buckets.append(Bucket(key, int(count), value))
        return buckets

    def scan_span(self, query: Query) -> Span | None:
        """The rowid span to read sequentially for ``query``'s time range, or None (see :meth:`_plan`)."""
        return self._plan(query, for_scan=True).span

    def _plan(self, query: Query, *, for_scan: bool = False) -> _Plan:
        """How to find ``query``'s rows: through a chunk index, by a sequential span, or left to SQLite.

        An index lookup per row costs about four times a sequential read of the row, so the most
        selective pivot term drives the query through its chunk index when its matches are fewer
        than a quarter of the rows the time range holds (or of the table, without a range). With no
        such term, an aggregation (``for_scan``) over a large time range reads the range's rowid span
        in order. Both are judged from index-only counts, cheap next to either plan. Rows arrive
        roughly in time order, so a time range's rows occupy a compact span of rowids.
        """
        bounded = query.time_field == "@timestamp"
        lo = to_epoch_us(query.start) if bounded and query.start is not None else None
        hi = to_epoch_us(query.end) if bounded and query.end is not None else None
        terms = [flt for flt in query.filters if isinstance(flt, Term) and flt.field in ix.PIVOT_COLUMNS]
        terms.sort(key=lambda flt: flt.field == "event.dataset")  # hosts, addresses, ids first: rarer
        span = None  # read only when a decision below needs it
        if lo is not None and hi is not None and (terms or for_scan):
            span = self._time_span(lo, hi)
        if terms:
            scope = span[1] - span[0] + 1 if span is not None else self._table_rows()
            # Counting stops where the term stops being worth it: a common dataset would otherwise
            # be counted entry by entry on every query.
            enough = scope // _LOOKUP_COST
            try:
                tail = ix.tail_rows(self._reader())
                for flt in terms:
                    values = list(flt.value) if isinstance(flt.value, list | tuple | set | frozenset) else [flt.value]
                    if not values or len(values) > _ID_CHUNK or not all(isinstance(v, str) for v in values):
                        continue
                    column = ix.PIVOT_COLUMNS[flt.field]
                    matched = tail + ix.count_indexed(self._reader(), column, values, lo, hi, limit=enough + 1)
                    if matched <= enough or scope < _SCAN_MIN_ROWS:
                        irregular = flt.field in PROMOTED_COLUMNS
                        return _Plan(drive=ix.candidates(column, values, lo, hi, irregular=irregular))
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: query failed: {exc}") from exc
        if for_scan and span is not None and span[2] >= _SCAN_MIN_ROWS:
            return _Plan(span=(span[0], span[1]))
        return _Plan()

    def _table_rows(self) -> int:
        # two statements: SQLite answers a lone MIN or MAX from the end of the tree, both at once by a scan
        first = self._read("SELECT COALESCE(MIN(rowid), 0) FROM events")[0][0]
        last = self._read("SELECT COALESCE(MAX(rowid), -1) FROM events")[0][0]
        return int(last) - int(first) + 1

    def _time_span(self, lo: int, hi: int) -> tuple[int, int, int]:
        """(first rowid, last rowid, rows) of ``lo <= ts < hi``, cached: detectors ask for the same range
        again and again. Rows written since extend the span to the newest rowid, which covers them."""
        newest = int(self._read("SELECT COALESCE(MAX(rowid), 0) FROM events")[0][0])
        with self._spans_lock:
            cached = self._spans.get((lo, hi))
        if cached is not None:
            first, last, rows, seen = cached
            if newest <= seen:
                return first, last, rows
            return first, newest, rows + newest - seen
        first, last, rows = self._read(
            "SELECT MIN(rowid), MAX(rowid), COUNT(*) FROM events INDEXED BY events_ts WHERE ts >= ? AND ts < ?",
            [lo, hi],
        )[0]
        if not rows:
            return 0, -1, 0
        with self._spans_lock:
            if len(self._spans) >= _SPAN_CACHE:
                self._spans.clear()
            self._spans[(lo, hi)] = (int(first), int(last), int(rows), newest)
        return int(first), int(last), int(rows)

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
        with self._spans_lock:
            self._spans.clear()
        if deleted:
            with self._write_lock:
                try:
                    with immediate_transaction(self._writer):
                        oldest = self._writer.execute("SELECT MIN(rowid) FROM events").fetchone()[0]
                        ix.drop_chunks_below(self._writer, oldest)
                except sqlite3.Error as exc:
                    raise StoreError(f"{self.path}: retention of the chunk indexes failed: {exc}") from exc
        self.compact_index()
        self.backfill_legacy()
        if deleted:
            with self._write_lock:
                try:
                    if self._legacy:
                        with self._writer:
                            self._legacy = self._load_legacy()
                    self._writer.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:
                    log.warning("post-retention checkpoint failed on %s: %s", self.path, exc)
        return deleted

    def backfill_legacy(self, max_rows: int = 2_000_000) -> int:
        """Fill the added columns of up to ``max_rows`` rows stored before they existed; return how many.

        Newest rows first (the ones detectors read), in chunks of one short transaction each, so
        writers wait at most one chunk; the legacy mark moves down with every chunk, so an
        interrupted backfill simply continues next time.
        """
        done = 0
        while done < max_rows and self._legacy:
            with self._write_lock:
                legacy = dict(self._legacy)
                if not legacy:
                    break
                since = max(legacy.values())
                columns = [c for c, at in legacy.items() if at == since]
                low = max(since - _BACKFILL_CHUNK, 0)
                paths = [json_path(f) for f, c in PROMOTED_COLUMNS.items() if c in columns]
                names = [c for c in PROMOTED_COLUMNS.values() if c in columns]
                composite = "json_type(doc, ?) IN ('array', 'object')"
                sets = ", ".join(f"{c} = CASE WHEN {composite} THEN NULL ELSE json_extract(doc, ?) END" for c in names)
                odd = " OR ".join(composite for _ in names)
                try:
                    with immediate_transaction(self._writer):
                        updated = self._writer.execute(
                            f"UPDATE events SET {sets}, irregular = CASE WHEN irregular = 1 OR {odd} THEN 1 ELSE 0 END "
                            "WHERE rowid >= ? AND rowid < ?",
                            [*(p for path in paths for p in (path, path)), *paths, low, since],
                        ).rowcount
                        legacy.update({c: low for c in columns})
                        oldest = self._writer.execute("SELECT MIN(rowid) FROM events").fetchone()[0]
                        legacy = {c: at for c, at in legacy.items() if oldest is not None and oldest < at}
                        self._save_legacy(legacy)
                except sqlite3.Error as exc:
                    raise StoreError(f"{self.path}: backfill failed: {exc}") from exc
                self._legacy = legacy
            done += updated
        return done

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
        self._stop.set()
        if self._maintainer.is_alive() and threading.current_thread() is not self._maintainer:
            self._maintainer.join(timeout=60)
        with self._index_lock:
            if self._ix_conn is not None:
                self._ix_conn.close()
        with self._write_lock:
            with contextlib.suppress(sqlite3.Error):
                self._writer.execute("PRAGMA optimize")
            self._writer.close()
        self._write_lock.close()
