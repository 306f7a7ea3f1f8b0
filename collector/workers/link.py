"""The worker's end of its pipe to the supervisor, and the detection sink that forwards over it.

Messages are ``(kind, payload)`` tuples. Worker -> supervisor: ``ready`` (the bound ports),
``failed`` (why the worker could not start), ``events`` (stored events as JSON lines, for
detection), ``stats`` (Prometheus text and receiver stats, every second). Supervisor -> worker:
``stop``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from soc_common.ecs import Event
from soc_common.parsers.json_codec import dumps_bytes, loads

log = logging.getLogger(__name__)

READY, FAILED, EVENTS, STATS, STOP = "ready", "failed", "events", "stats", "stop"


class WorkerLink:
    """Sends to the supervisor from any thread of the worker; ``wait_for_stop`` blocks on its orders."""

    def __init__(
        self, index: int, conn: Connection, *, forward_detection: bool, shared_dir: Path | None = None
    ) -> None:
        self.index = index
        self.forward_detection = forward_detection
        # the folder the supervisor made for this run, local to the host: the rate-limit buckets every
        # worker shares, the NetFlow exporters' owners, the workers' mailboxes (collector.workers.mailbox)
        self.shared_dir = shared_dir
        self._conn = conn
        self._lock = threading.Lock()

    def send(self, kind: str, payload: Any) -> None:
        """Raises ``OSError`` (or ``EOFError``) when the supervisor is gone."""
        with self._lock:
            self._conn.send((kind, payload))

    def wait_for_stop(self) -> None:
        """Return when the supervisor says stop or its end of the pipe closes."""
        for kind, _ in messages(self._conn):
            if kind == STOP:
                return


def messages(conn: Connection) -> Iterator[tuple[str, Any]]:
    """``(kind, payload)`` from one end of a link until the other end closes."""
    while True:
        try:
            kind, payload = conn.recv()
        except (EOFError, OSError):
            return
        yield kind, payload


def encode_events(events: Sequence[Event]) -> bytes:
    """Events as JSON lines (a JSON text never holds a raw newline)."""
    return b"\n".join(dumps_bytes(event) for event in events)


def decode_events(data: bytes) -> list[Event]:
    """The supervisor's side of :func:`encode_events`; a line that does not decode is logged and skipped."""
    out: list[Event] = []
    for line in data.split(b"\n"):
        if not line:
            continue
        try:
            event = loads(line)
        except (ValueError, RecursionError):
            log.error("a forwarded event did not decode; it is stored but not seen by detection")
            continue
        if isinstance(event, dict):
            out.append(event)
    return out


class DetectionForwarder:
    """The worker's detection sink: stored events go to the supervisor, which runs the rules.

    Sending blocks while the supervisor's detection queue is full (the pipe fills behind it), so a
    slow rule set slows ingest down, as the in-process queue does with one process.
    """

    name = "detection"
    depth = 0  # the queue that matters is the supervisor's

    def __init__(self, link: WorkerLink) -> None:
        self.link = link
        self.forwarded = 0
        self.errors = 0

    def write(self, events: Sequence[Event]) -> None:
        try:
            self.link.send(EVENTS, encode_events(events))
        except (OSError, EOFError):
            self.errors += 1  # the supervisor is gone; this worker is about to be stopped
            return
        self.forwarded += len(events)

    def drain(self, timeout: float = 30.0) -> bool:
        return True

    def close(self) -> None:
        return None
