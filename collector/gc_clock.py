"""Cyclic garbage collection by the clock instead of by allocation counts, for the collector's processes.

CPython collects whenever new containers outnumber freed ones by a threshold, and each collection
scans every young container still alive. The collector makes about fifteen containers per event
(decoded JSON, ECS dicts) that live for one batch, and under load a backlog waits for the store, so
every event's containers were scanned two or three times before reference counting freed them
anyway: 4 µs of 34 µs per syslog line over TCP (``bench/bench_syslog.py --workers 1``, collection
off against on; a higher threshold only saved 1 µs, since it just makes each scan bigger).

Event documents are trees, so cycles are rare here (an exception kept with its traceback, a
connection's objects on an error path). While the collector runs, automatic collection is off;
a thread collects the young generations every few seconds, scanning only what is alive at that
moment, and everything once a minute, so cyclic garbage still lives seconds, not longer. What
existed before the start (modules, configuration, the detection engine) is frozen out of the scans.

A scan's cost is what is alive at that moment, and under a backlog (a NetFlow burst queued for the
store) that is hundreds of thousands of event containers: young collections of 160-325 ms every
2 s, a tenth of a worker's time. So each collection also waits until the previous one's cost is at
most ``max_share`` of the time since (1 %): a 190 ms scan puts the next one 19 s later.
"""

from __future__ import annotations

import gc
import time

from collector.ticker import Ticker

YOUNG_SECONDS = 2.0
FULL_EVERY = 30  # young collections per full one (one minute)
MAX_SHARE = 0.01  # of the time since the last collection, at most this much spent collecting


class TimedCollection:
    """``start()`` turns automatic collection off and starts the timer; ``stop()`` undoes both."""

    def __init__(
        self, young_seconds: float = YOUNG_SECONDS, full_every: int = FULL_EVERY, max_share: float = MAX_SHARE
    ) -> None:
        self.full_every = full_every
        self.max_share = max_share
        self.collections = 0
        self.deferred = 0  # ticks skipped because the last collection was expensive
        self._next_at = 0.0
        self._ticker = Ticker("gc-clock", young_seconds, self._collect)
        self._was_enabled = False

    def start(self) -> TimedCollection:
        self._was_enabled = gc.isenabled()
        gc.collect()
        gc.freeze()  # the start-up objects stay: never scan them again
        gc.disable()
        self._ticker.start()
        return self

    def stop(self) -> None:
        if not self._ticker.running:
            return
        self._ticker.stop(timeout=5)
        gc.unfreeze()
        if self._was_enabled:
            gc.enable()

    def _collect(self) -> None:
        started = time.monotonic()
        if started < self._next_at:
            self.deferred += 1
            return
        self.collections += 1
        gc.collect(2 if self.collections % self.full_every == 0 else 1)
        self._next_at = started + (time.monotonic() - started) / self.max_share
