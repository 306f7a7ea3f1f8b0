"""One write transaction on a SQLite connection, for every small SQLite file the collector keeps
(event store, agent registry, detector and scheduler state)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator


@contextlib.contextmanager
def immediate_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; if the block or the commit fails, all of it is rolled back.

    IMMEDIATE takes the write lock at the start, so a busy database is met before any work is done;
    a failing rollback (the connection already gone) never hides the error that caused it.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
