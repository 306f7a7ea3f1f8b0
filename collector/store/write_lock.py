"""The embedded store's write lock: threads of one process, and every process writing the same file.

SQLite admits one writer at a time. Inside a process a plain lock queues the threads; across the
collector's ingest workers (``workers`` > 1) an exclusive ``flock`` on ``<store>.lock`` does the same.
Without it a second process would meet ``SQLITE_BUSY`` and SQLite's busy handler, which sleeps
1, 2, 5, 10 ... ms between retries: most of a contended second would go to sleeping. A waiter on
``flock`` wakes as soon as the holder releases it.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType

try:
    import fcntl
except ImportError:  # Windows: the collector runs one process there, the thread lock is enough
    fcntl = None  # type: ignore[assignment]


class WriteLock:
    """``with lock:`` holds the thread lock, then the file lock when the store is a file."""

    def __init__(self, store_path: Path | None) -> None:
        self._thread_lock = threading.Lock()
        self._fd: int | None = None
        if store_path is not None and fcntl is not None:
            self._fd = os.open(f"{store_path}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def __enter__(self) -> WriteLock:
        self._thread_lock.acquire()
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            except BaseException:
                self._thread_lock.release()
                raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread_lock.release()

    def close(self) -> None:
        """Close the lock file (the store is closed; nothing holds the lock any more)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
