"""A daemon thread that calls one function every few seconds until stopped (the collector's timers)."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Ticker:
    def __init__(self, name: str, interval: float, tick: Callable[[], object], *, immediately: bool = False) -> None:
        """``immediately``: the first call as soon as the thread starts, not one interval later."""
        self.name = name
        self.immediately = immediately
        self.interval = interval
        self._tick = tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout)
        self._thread = None

    def _loop(self) -> None:
        if self.immediately:
            self._tick()
        while not self._stop.wait(self.interval):
            self._tick()
