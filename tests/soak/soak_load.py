"""Steady generated load for the soak: auth-log files the agents tail, syslog over TCP and UDP, NetFlow v9.

Every record carries a unique sequence token (``sq<stream>n<number>``; NetFlow: the source address)
so the final tally can say exactly which records reached the store, which twice, and which never.
Each generator remembers at which sequence number every soak phase began, so the tally can be split
per fault. Rates are kept by a deadline per record, not by sleeping a fixed time, so a slow moment
is caught up rather than silently lowering the load.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "collector"))
from peers import netflow_stream  # the synthetic v9 exporter of the collector tests

TOKEN = re.compile(r"sq([a-z0-9]+)n(\d+)")
NETFLOW_BASE = 0x0A000000  # record n of the stream has source address 10.0.0.0 + n (see peers.netflow_stream)
FLOWS_PER_PACKET = 10


def token(stream: str, n: int) -> str:
    return f"sq{stream}n{n}"


class PhaseClock:
    """The name of the soak phase now running; generators stamp their records' phase from it."""

    def __init__(self, first: str) -> None:
        self._lock = threading.Lock()
        self.name = first

    def set(self, name: str) -> None:
        with self._lock:
            self.name = name

    def get(self) -> str:
        with self._lock:
            return self.name


class Generator:
    """A paced loop in a thread: ``produce(n)`` sends record ``n`` and says whether it went out."""

    stream = ""

    def __init__(self, rate: float, phases: PhaseClock) -> None:
        self.rate = rate
        self.phases = phases
        self.sent = 0
        self.failed = 0  # records the sender knows did not leave (connection refused, reset)
        self.boundaries: list[tuple[str, int]] = []  # (phase, first sequence number of that phase)
        self._next = 0
        self._unsent: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"load-{self.stream}", daemon=True)

    def produce(self, n: int) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.close()

    def close(self) -> None:
        """Release sockets or files; nothing by default."""

    def sent_by_phase(self) -> dict[str, set[int]]:
        """Sequence numbers sent, grouped by the phase they were sent in."""
        out: dict[str, set[int]] = {}
        bounds = [*self.boundaries, ("", self._next)]
        for (phase, first), (_, end) in itertools.pairwise(bounds):
            out.setdefault(phase, set()).update(n for n in range(first, end) if n not in self._unsent)
        return out

    def _run(self) -> None:
        started = time.monotonic()
        current = ""
        while not self._stop.is_set():
            due = started + self._next / self.rate
            wait = due - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                break
            phase = self.phases.get()
            if phase != current:
                self.boundaries.append((phase, self._next))
                current = phase
            if self.produce(self._next):
                self.sent += 1
            else:
                self.failed += 1
                self._unsent.add(self._next)
            self._next += 1


def auth_line(stream: str, n: int, when: datetime) -> str:
    """A realistic auth.log line (sshd failures and successes, sudo) carrying the sequence token."""
    stamp = f"{when:%b} {when.day:2d} {when:%H:%M:%S}"
    user = token(stream, n)
    ip = f"10.{40 + n % 3}.{(n >> 8) % 256}.{n % 250 + 1}"
    head = f"{stamp} soak-{stream}"
    sshd = f"{head} sshd[{2000 + n % 5000}]:"
    peer = f"from {ip} port {40000 + n % 20000} ssh2"
    kind = n % 4
    if kind == 0:
        return f"{sshd} Failed password for invalid user {user} {peer}"
    if kind == 1:
        return f"{sshd} Accepted password for {user} {peer}"
    if kind == 2:
        return (
            f"{head} sudo: {user} : TTY=pts/0 ; PWD=/home/{user} ; USER=root ; COMMAND=/usr/bin/systemctl status nginx"
        )
    return f"{sshd} Failed password for {user} {peer}"


class AuthLogWriter(Generator):
    """Appends auth.log lines to a file an agent tails; ``skew`` shifts their timestamps (clock skew)."""

    def __init__(self, stream: str, path: Path, rate: float, phases: PhaseClock, skew: timedelta = timedelta()) -> None:
        self.stream = stream
        super().__init__(rate, phases)
        self.path = path
        self.skew = skew
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = path.open("a", encoding="utf-8", buffering=1)

    def produce(self, n: int) -> bool:
        self._fh.write(auth_line(self.stream, n, datetime.now(UTC) + self.skew) + "\n")
        return True

    def close(self) -> None:
        self._fh.close()


def syslog_line(stream: str, n: int) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"<86>1 {stamp} fw-soak sshd 4242 - - Failed password for {token(stream, n)} from 10.9.0.{n % 250 + 1}"


class TcpSyslogSender(Generator):
    """RFC 6587 octet-counted syslog over TCP; reconnects after a failure and never re-sends.

    Plain TCP syslog has no application acknowledgement: what sat in the socket buffers when the
    collector died is gone, and a sender that re-sent would create duplicates. Counting a record as
    sent only when ``sendall`` returned is the most a TCP sender can know.
    """

    stream = "st"

    def __init__(self, address: tuple[str, int], rate: float, phases: PhaseClock) -> None:
        super().__init__(rate, phases)
        self.address = address
        self._sock: socket.socket | None = None
        self.reconnects = 0

    def produce(self, n: int) -> bool:
        frame = syslog_line(self.stream, n).encode()
        frame = f"{len(frame)} ".encode() + frame
        try:
            if self._sock is None:
                self._sock = socket.create_connection(self.address, timeout=5)
                self.reconnects += 1
            self._sock.sendall(frame)
            return True
        except OSError:
            self.close()
            return False

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None


class UdpSyslogSender(Generator):
    """RFC 5424 syslog over UDP: losses are allowed, but must show in the receiver's counters."""

    stream = "su"

    def __init__(self, address: tuple[str, int], rate: float, phases: PhaseClock) -> None:
        super().__init__(rate, phases)
        self.address = address
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def produce(self, n: int) -> bool:
        try:
            self._sock.sendto(syslog_line(self.stream, n).encode(), self.address)
            return True
        except OSError:  # ICMP port unreachable from an earlier datagram while the collector was down
            return False

    def close(self) -> None:
        self._sock.close()


class NetflowSender(Generator):
    """NetFlow v9 export at ``rate`` packets/s of FLOWS_PER_PACKET flows; sequence n = packet n."""

    stream = "nf"

    def __init__(self, address: tuple[str, int], rate: float, phases: PhaseClock, packets: int) -> None:
        super().__init__(rate, phases)
        self.address = address
        self._packets = netflow_stream(9, packets, FLOWS_PER_PACKET, template_every=10)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def produce(self, n: int) -> bool:
        if n >= len(self._packets):
            self._stop.set()
            return False
        try:
            self._sock.sendto(self._packets[n], self.address)
            return True
        except OSError:
            return False

    def close(self) -> None:
        self._sock.close()


def flow_packet(source_ip: str) -> int | None:
    """The packet sequence number a stored flow came from, by its source address."""
    try:
        (value,) = struct.unpack("!I", socket.inet_aton(source_ip))
    except (OSError, struct.error):
        return None
    n = value - NETFLOW_BASE
    return n // FLOWS_PER_PACKET if 0 <= n < 1 << 24 else None


def start_all(generators: list[Generator]) -> Callable[[], None]:
    for g in generators:
        g.start()

    def stop() -> None:
        for g in generators:
            g.stop()

    return stop
