"""Which ingest worker decodes each NetFlow exporter, and the hand-over of packets to that worker.

The kernel spreads UDP datagrams over the workers' sockets by a hash of addresses and ports, so with
the handful of exporters an office has one worker often gets most of them: four exporters on two
workers all landed on one worker in two runs of five here, three on one in the others, and that
worker's core then sets the collector's NetFlow rate. An exporter's packets must all be decoded in
one place (its templates and sequence numbers live there), so the first worker to see an exporter
assigns it for the run to the worker with the fewest exporters (itself on a tie), in a table all
workers read under a file lock. Packets that reach another worker are handed to their owner through
its mailbox (:mod:`collector.workers.mailbox`): one system call a packet of about thirty flows.

Everything lives in the folder the supervisor makes for the run (``WorkerLink.shared_dir``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from pathlib import Path

from collector.workers.mailbox import Mailbox, WorkerPlace

MAX_EXPORTERS = 4096  # assigned exporters per run; beyond, a new one is decoded where it lands
_ADDRESS_MAX = 255  # one length byte before the exporter's address text


class ExporterOwners:
    """``owner(exporter)`` -> the index of the worker that decodes that exporter's packets."""

    def __init__(self, folder: Path, workers: int, me: int) -> None:
        self.path = folder / "netflow-owners.json"
        self.workers = workers
        self.me = me
        self.known: dict[str, int] = {}  # read from the table once per exporter; never changes in a run

    def owner(self, exporter: str) -> int:
        found = self.known.get(exporter)
        if found is not None:
            return found
        if len(self.known) >= MAX_EXPORTERS:
            return self.me  # a flood of (spoofed) sources must not grow the table without end
        with _locked(self.path) as table:
            found = table.get(exporter)
            if found is None and len(table) < MAX_EXPORTERS:
                found = table[exporter] = self._least_loaded(table)
        owner = self.me if found is None or not 0 <= found < self.workers else found
        self.known[exporter] = owner
        return owner

    def _least_loaded(self, table: dict[str, int]) -> int:
        counts = [0] * self.workers
        for owner in table.values():
            if 0 <= owner < self.workers:
                counts[owner] += 1
        fewest = min(counts)
        return self.me if counts[self.me] == fewest else counts.index(fewest)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[dict[str, int]]:
    """The owners table, read and written back under an exclusive ``flock`` (the kernel drops it if
    the holder dies, so a killed worker cannot wedge the others). A table cut short by a worker
    killed while writing reads as empty: exporters are then assigned again, and the workers that
    knew the old owners keep them for the run."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        with os.fdopen(os.dup(fd), "r+", encoding="utf-8") as fh:
            table = _table(fh.read())
            before = dict(table)
            yield table
            if table != before:
                fh.seek(0)
                fh.truncate()
                fh.write(json.dumps(table))
                fh.flush()
    finally:
        os.close(fd)  # closing the last descriptor of the open file releases the lock


def _table(text: str) -> dict[str, int]:
    try:
        loaded = json.loads(text) if text else {}
    except ValueError:
        return {}
    if not isinstance(loaded, dict):
        return {}
    return {k: v for k, v in loaded.items() if isinstance(k, str) and type(v) is int}


class Handover:
    """This worker's NetFlow mailbox: packets other workers received for its exporters, and the sender
    of packets to their owners. A message is the exporter's address (a length byte, then its text)
    and the packet."""

    def __init__(self, place: WorkerPlace) -> None:
        self.mailbox = Mailbox(place, "netflow")

    def send(self, owner: int, exporter: str, packet: memoryview) -> bool:
        """Hand ``packet`` to worker ``owner``; False when it cannot take it (gone, restarting, stuck)."""
        address = exporter.encode("ascii", "replace")[:_ADDRESS_MAX]
        return self.mailbox.send(owner, [bytes((len(address),)), address, packet])

    @staticmethod
    def unpack(message: memoryview) -> tuple[bytes, str]:
        """(packet, exporter) from a received hand-over message."""
        length = message[0]
        return message[1 + length :].tobytes(), message[1 : 1 + length].tobytes().decode("ascii")

    def close(self) -> None:
        self.mailbox.close()
