"""Terminal steps: the event store (durable, decides the ack), detection (asynchronous) and alert files.

Detection runs on its own thread behind a bounded queue: an agent's batch is acknowledged as soon as
it is stored, a slow or failing rule set never costs stored events, and a full queue slows ingest
down (back-pressure) instead of growing memory without bound. The bound counts events as well as
batches: 256 queued batches of 2,000 syslog lines would be half a million events, over half a GiB.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from collector.metrics import CollectorMetrics
from collector.pipeline.base import Sink
from collector.store.base import EventStore, StoreError, WriteResult
from soc_common.alert import Alert, AlertSink
from soc_common.ecs import Event

log = logging.getLogger(__name__)


class StoreSink(Sink):
    """Writes to the :class:`EventStore`; raises :class:`StoreError` so receivers can refuse the ack."""

    name = "store"

    def __init__(self, store: EventStore, metrics: CollectorMetrics | None = None) -> None:
        self.store = store
        self.metrics = metrics

    def store_batch(self, events: Sequence[Event]) -> WriteResult:
        started = time.perf_counter()
        try:
            result = self.store.write(events)
        except StoreError:
            if self.metrics:
                self.metrics.store_errors.inc()
            raise
        except Exception as exc:  # an unexpected store failure must still mean "not acknowledged"
            if self.metrics:
                self.metrics.store_errors.inc()
            log.exception("event store write failed")
            raise StoreError(f"{type(exc).__name__}: {exc}") from exc
        if self.metrics:
            self.metrics.store_latency.observe(time.perf_counter() - started)
        return result

    def write(self, events: Sequence[Event]) -> None:
        self.store_batch(events)


class DetectionEngine(Protocol):
    """What the collector needs from ``collector.detection`` (kept structural to avoid the import)."""

    def process(self, events: Sequence[Event]) -> list[Alert]: ...


class DetectionFeed(Protocol):
    """Where the pipeline hands stored events for detection: :class:`DetectionSink` in the process
    that runs the rules, :class:`collector.workers.link.DetectionForwarder` in an ingest worker."""

    @property
    def depth(self) -> int: ...
    def write(self, events: Sequence[Event]) -> None: ...
    def drain(self, timeout: float = 30.0) -> bool: ...
    def close(self) -> None: ...


# About 1.2 KiB per decoded event: 60 MiB, a few seconds of a full rule pack's work on one core.
MAX_QUEUED_EVENTS = 50_000


class DetectionSink(Sink):
    """Feeds stored events to the detection engine on a worker thread and emits the alerts."""

    name = "detection"
    _STOP = object()

    def __init__(
        self,
        engine: DetectionEngine,
        alert_sink: AlertSink,
        metrics: CollectorMetrics | None = None,
        max_batches: int = 256,
        max_events: int = MAX_QUEUED_EVENTS,
    ) -> None:
        self.engine = engine
        self.alert_sink = alert_sink
        self.metrics = metrics
        self.errors = 0
        self.alerts = 0
        self.max_events = max_events
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max_batches)
        self._queued_events = 0
        self._room = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="detection", daemon=True)
        self._thread.start()

    def write(self, events: Sequence[Event]) -> None:
        """Queue a copy of ``events``; blocks while the queue is full (an empty queue takes any batch)."""
        batch = list(events)
        with self._room:
            while self._queued_events and self._queued_events + len(batch) > self.max_events:
                self._room.wait()
            self._queued_events += len(batch)
        self._queue.put(batch)
        self._gauge()

    def _gauge(self) -> None:
        if self.metrics:
            self.metrics.queue_depth.labels(queue="detection").set(self._queue.qsize())

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is self._STOP:
                    return
                assert isinstance(item, list)
                try:
                    self._detect(item)
                finally:
                    with self._room:
                        self._queued_events -= len(item)
                        self._room.notify_all()
            finally:
                self._queue.task_done()
                self._gauge()

    def _detect(self, events: list[Event]) -> None:
        try:
            alerts = self.engine.process(events)
        except Exception:
            self.errors += 1
            if self.metrics:
                self.metrics.detection_errors.inc()
            log.exception("detection failed on a batch of %d events (events are stored)", len(events))
            return
        if not alerts:
            return
        self.alerts += len(alerts)
        if self.metrics:
            for alert in alerts:
                self.metrics.alerts.labels(level=alert.rule_level).inc()
        try:
            self.alert_sink.emit(alerts)
        except Exception:
            self.errors += 1
            if self.metrics:
                self.metrics.alert_sink_errors.inc()
            log.exception("alert sink failed; %d alerts not delivered", len(alerts))

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until queued batches are processed (tests, shutdown); False on timeout."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout: float = 30.0) -> None:
        self._queue.put(self._STOP)
        self._thread.join(timeout)

    @property
    def depth(self) -> int:
        return self._queue.qsize()


class JsonlAlertSink:
    """Appends alerts as JSON lines (fsynced), for installs without the SOC database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def emit(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        data = "".join(alert.model_dump_json() + "\n" for alert in alerts).encode()
        with self._lock, self.path.open("ab") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())


def read_jsonl_alerts(path: Path) -> list[Alert]:
    """Read back what :class:`JsonlAlertSink` wrote (skipping a torn last line)."""
    out: list[Alert] = []
    if not path.exists():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(Alert.model_validate(json.loads(line)))
        except ValueError:
            continue
    return out


class FanOutAlertSink:
    """Hands every batch of alerts to each sink in turn (the SOC database first, then forwarders)."""

    def __init__(self, sinks: Sequence[AlertSink]) -> None:
        self.sinks = list(sinks)

    def emit(self, alerts: Sequence[Alert]) -> None:
        for sink in self.sinks:
            sink.emit(alerts)
