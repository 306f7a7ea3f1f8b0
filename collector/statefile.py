"""A small durable SQLite file for a component's own state (checkpoints, baselines, run records).

Detectors keep state that must survive restarts exactly (a checkpoint that moves with the work it
covers), so every write is a short ``BEGIN IMMEDIATE`` transaction in WAL mode with
``synchronous=FULL``; one connection behind a lock is enough because these writes are small and rare.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from collector.sqlite_tx import immediate_transaction


class StateFile:
    """Base for state stores: opens ``path``, applies ``schema``, and offers ``_tx`` and ``_rows``."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(schema)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; rolled back if the block raises."""
        with self._lock, immediate_transaction(self._db) as db:
            yield db

    def _rows(self, sql: str, args: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    def close(self) -> None:
        with self._lock:
            self._db.close()
