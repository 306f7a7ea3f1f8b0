"""A running FileSource whose emitted events land in a list (``emit`` is the real interface)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from agent.sources.files import FileSource, FileSourceSettings
from soc_common.ecs import Event


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.state_dir = tmp_path / "state"
        self.events: list[Event] = []
        self._lock = threading.Lock()
        self._running: list[tuple[FileSource, threading.Event, threading.Thread]] = []

    def emit(self, batch: Sequence[Event]) -> None:
        with self._lock:
            self.events.extend(batch)

    def start(self, **settings: Any) -> FileSource:
        defaults: dict[str, Any] = {
            "poll_interval": 0.02,
            "close_rotated_after": 0.1,
            "start_at": "beginning",
            "format": "raw",
        }
        defaults.update(settings)
        source = FileSource("test", FileSourceSettings(**defaults), state_dir=self.state_dir, host_id="h1")
        stop = threading.Event()
        thread = threading.Thread(target=source.run, args=(self.emit, stop), daemon=True)
        thread.start()
        self._running.append((source, stop, thread))
        return source

    def stop(self) -> None:
        for _, stop, thread in self._running:
            stop.set()
            thread.join(timeout=5)
            assert not thread.is_alive()
        self._running.clear()

    def messages(self) -> list[str]:
        with self._lock:
            return [e["event"]["original"] for e in self.events]

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.01)
        raise AssertionError(f"timed out; got {len(self.events)} events: {self.messages()[-5:]}")

    def wait_count(self, n: int, timeout: float = 5.0) -> None:
        self.wait_for(lambda: len(self.events) >= n, timeout)
        time.sleep(0.1)  # give a duplicate the chance to show up


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    h = Harness(tmp_path)
    yield h
    h.stop()
