"""Batches events for the pipeline and keeps them while the store is down.

Shared by the syslog and NetFlow receivers (it lives here only because those are the folders this
work owns; it belongs in ``collector.pipeline``). Receivers hand events to :meth:`add`; one flusher
thread calls ``handle`` with batches of up to ``batch_size`` events at least every
``flush_interval`` seconds. When ``handle`` raises, the batch stays at the head of the queue and is
retried with backoff: nothing is lost while the store recovers. The queue is bounded; when it is
full, :meth:`add` either waits (TCP senders then feel backpressure) or refuses and counts the
events as dropped (UDP has no way to slow the sender down).

A receiver that knows no string in its events is longer than some length (a parsed line's fields
are pieces of the line) says so when it adds them; batches then carry the longest such bound
(:class:`SizedBatch`), and :class:`~collector.pipeline.normalize.Normalize` skips its per-event
size check, which costs about a microsecond per event (an encoding of the whole event).
"""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from collector.pipeline.normalize import SizedBatch
from soc_common.ecs import Event

log = logging.getLogger(__name__)

Handle = Callable[[list[Event]], None]
_UNKNOWN = sys.maxsize  # no bound on the events' strings: Normalize checks each event


@dataclass
class BatcherStats:
    batches: int = 0
    events_handled: int = 0
    handle_errors: int = 0
    dropped_queue_full: int = 0
    dropped_at_shutdown: int = 0


class RetryingBatcher:
    def __init__(
        self,
        handle: Handle,
        *,
        name: str,
        batch_size: int,
        flush_interval: float,
        max_queued: int,
        retry_initial: float = 0.2,
        retry_max: float = 5.0,
    ) -> None:
        self._handle = handle
        self.name = name
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queued = max(max_queued, batch_size)
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.stats = BatcherStats()
        self._queue: deque[Event] = deque()
        self._spans: deque[list[int]] = deque()  # [events, longest string] per add(), in queue order
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._retry_delay = 0.0

    @property
    def queued(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"{self.name}-batcher", daemon=True)
        self._thread.start()

    def add(self, events: list[Event], *, wait: float | None = 0.0, longest: int | None = None) -> bool:
        """Queue ``events``; False (and counted as dropped) when the queue stayed full for ``wait`` s.

        ``wait=None`` waits until there is room or the batcher stops. ``longest``: no string in
        ``events`` has more characters than this (None: unknown).
        """
        if not events:
            return True
        with self._cond:
            deadline = None if wait is None else time.monotonic() + wait
            # An empty queue always takes the chunk, so a chunk larger than the bound cannot wait forever.
            while self._queue and len(self._queue) + len(events) > self.max_queued and not self._stopping:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    self.stats.dropped_queue_full += len(events)
                    return False
                self._cond.wait(remaining if remaining is not None else 0.5)
            if self._stopping and self._thread is not None and not self._thread.is_alive():
                self.stats.dropped_at_shutdown += len(events)
                return False
            self._queue.extend(events)
            self._spans.append([len(events), _UNKNOWN if longest is None else longest])
            if len(self._queue) >= self.batch_size:
                self._cond.notify_all()
        return True

    def _take(self) -> list[Event] | None:
        """Wait for a full batch, the flush interval or stop; None when stopped and empty."""
        with self._cond:
            deadline = time.monotonic() + self.flush_interval
            while len(self._queue) < self.batch_size and not self._stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            if not self._queue:
                return None if self._stopping else []
            size = min(len(self._queue), self.batch_size)
            batch = SizedBatch(self._queue if size == len(self._queue) else itertools.islice(self._queue, size))
            batch.longest = self._longest(size)
            return batch

    def _longest(self, count: int) -> int:
        """The bound on the strings of the first ``count`` queued events: the largest their adders gave."""
        longest = 0
        for events, most in self._spans:
            longest = max(longest, most)
            count -= events
            if count <= 0:
                break
        return longest

    def _done(self, count: int) -> None:
        with self._cond:
            if count >= len(self._queue):
                self._queue.clear()
                self._spans.clear()
            else:
                for _ in range(count):
                    self._queue.popleft()
                while count > 0:
                    head = self._spans[0]
                    if head[0] > count:
                        head[0] -= count
                        break
                    count -= head[0]
                    self._spans.popleft()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            if not batch:
                continue
            if self._deliver(batch):
                self._done(len(batch))
            elif self._stopping and self._give_up():
                return

    def _deliver(self, batch: list[Event]) -> bool:
        try:
            self._handle(batch)
        except Exception as exc:  # StoreError or anything else: keep the batch, retry later
            self.stats.handle_errors += 1
            self._retry_delay = min(self.retry_max, max(self.retry_initial, self._retry_delay * 2))
            log.warning(
                "%s: handing %d events to the pipeline failed (%s); retrying in %.1fs",
                self.name, len(batch), type(exc).__name__, self._retry_delay,
            )  # fmt: skip
            with self._cond:
                self._cond.wait(self._retry_delay)
            return False
        self._retry_delay = 0.0
        self.stats.batches += 1
        self.stats.events_handled += len(batch)
        return True

    def _give_up(self) -> bool:
        """While stopping, retry until the stop deadline; then count what is left as lost."""
        if time.monotonic() < self._stop_deadline:
            return False
        with self._cond:
            lost = len(self._queue)
            self._queue.clear()
            self._spans.clear()
        if lost:
            self.stats.dropped_at_shutdown += lost
            log.error("%s: %d events could not be stored before shutdown", self.name, lost)
        return True

    _stop_deadline = 0.0

    def stop(self, timeout: float = 10.0) -> None:
        """Flush what is queued (retrying for up to ``timeout`` seconds), then stop."""
        with self._cond:
            self._stopping = True
            self._stop_deadline = time.monotonic() + timeout
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout + self.retry_max + 1)
