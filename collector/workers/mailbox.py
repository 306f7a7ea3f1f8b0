"""Unix datagram mailboxes between the ingest workers of one collector, for handing work over.

The kernel decides which worker a UDP packet or a TCP connection reaches, by a hash; receivers use
a mailbox to move work to another worker when that choice would leave one worker with most of it
(NetFlow: an exporter's packets to the worker that owns it; syslog: a share of a busy stream's
lines). A message is one datagram; a local datagram is never reordered or cut, and sending it is
one system call. Mailboxes live in the folder the supervisor makes for the run.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 2.0  # a mailbox full this long: the sender keeps the work
MAX_MESSAGE_BYTES = 160 * 1024  # under the default socket send buffer (208 KiB); bigger work stays put


@dataclass(frozen=True)
class WorkerPlace:
    """Where an ingest worker stands among its collector's workers: their shared folder, how many, which."""

    folder: Path
    workers: int
    me: int


def mailbox_path(folder: Path, name: str, worker: int) -> Path:
    return folder / f"{name}-{worker}.sock"


class Mailbox:
    """``name``'s mailbox of this worker (``inbox``) and a sender to the same mailbox of the others."""

    def __init__(self, place: WorkerPlace, name: str) -> None:
        self.place = place
        self.name = name
        self.path = mailbox_path(place.folder, name, place.me)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by this worker's predecessor (killed, then replaced)
        self.inbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.inbox.bind(str(self.path))
        self.inbox.settimeout(0.2)
        self._out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._out.settimeout(SEND_TIMEOUT_SECONDS)
        self._targets = [str(mailbox_path(place.folder, name, w)) for w in range(place.workers)]

    def send(self, worker: int, parts: Sequence[bytes | memoryview]) -> bool:
        """One message (``parts`` joined; a few of them: the kernel takes at most 1,024) to ``worker``;
        False when it cannot take it (gone, restarting, or its mailbox stayed full): the caller then
        does the work itself."""
        if sum(len(part) for part in parts) > MAX_MESSAGE_BYTES:
            return False  # the receiver's buffer would cut it
        try:
            self._out.sendmsg(parts, [], 0, self._targets[worker])
        except OSError:  # ENOENT / ECONNREFUSED: nobody there; TimeoutError: full
            return False
        return True

    def messages(self, stop: threading.Event) -> Iterator[memoryview]:
        """Each message handed to this worker until ``stop`` is set (a view valid until the next)."""
        buffer = bytearray(MAX_MESSAGE_BYTES)
        view = memoryview(buffer)
        while not stop.is_set():
            try:
                size = self.inbox.recv_into(buffer)
            except TimeoutError:
                continue
            except OSError:
                if stop.is_set():
                    return
                log.exception("%s mailbox error", self.name)
                time.sleep(0.1)
                continue
            yield view[:size]

    def close(self) -> None:
        self.inbox.close()
        self._out.close()
        with contextlib.suppress(OSError):
            self.path.unlink()
