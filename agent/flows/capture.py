"""Live packet capture: raw frames from an interface, with a kernel BPF filter, into a FlowMeter.

scapy only opens the capture socket (AF_PACKET on Linux, libpcap/BPF elsewhere) and compiles the
filter; frames are read with ``recv_raw`` as bytes and never dissected by scapy, because scapy's
dissection is three orders of magnitude slower than the meter.
"""

from __future__ import annotations

import select
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from agent.flows.meter import FlowMeter
from soc_common.ecs import Event

#: how long one wait for frames may block, so a stop request is noticed promptly
POLL_SECONDS = 0.25
#: frames read per wake-up before checking the clock again
BURST = 512


class CaptureError(Exception):
    """The interface cannot be opened (missing, no permission, bad filter)."""


class LiveCapture:
    """Capture raw frames from ``interface``, optionally filtered by a BPF expression."""

    def __init__(self, interface: str, bpf: str | None = None, *, promisc: bool = False) -> None:
        self.interface = interface
        self.bpf = bpf or None
        self.promisc = promisc
        self.frames = 0
        self._sock: Any = None
        self._linktypes: dict[type, int] = {}

    def open(self) -> None:
        import scapy.arch
        import scapy.layers.inet
        import scapy.layers.inet6
        import scapy.layers.l2  # noqa: F401
        from scapy.config import conf
        from scapy.error import Scapy_Exception

        self._linktypes = dict(conf.l2types.layer2num)
        try:
            # loopback shows every packet twice (sent and received): L2socket skips the sent copy
            factory = conf.L2socket if self.interface == conf.loopback_name else conf.L2listen
            self._sock = factory(iface=self.interface, filter=self.bpf, promisc=self.promisc)
        except PermissionError as exc:
            raise CaptureError(f"capture on {self.interface}: permission denied (needs CAP_NET_RAW): {exc}") from None
        except (OSError, Scapy_Exception, ValueError) as exc:
            raise CaptureError(f"capture on {self.interface} (filter {self.bpf!r}): {exc}") from None
        inner = getattr(self._sock, "ins", None)
        if inner is not None and hasattr(inner, "setblocking"):
            inner.setblocking(False)

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def __enter__(self) -> LiveCapture:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def frames_until(self, deadline: float) -> Iterator[tuple[float, int, bytes]]:
        """Yield ``(ts, linktype, frame)`` for frames arriving before ``deadline`` (monotonic)."""
        if self._sock is None:
            raise CaptureError("capture is not open")
        sock = self._sock
        while True:
            wait = deadline - time.monotonic()
            if wait <= 0:
                return
            ready, _, _ = select.select([sock], [], [], min(wait, POLL_SECONDS))
            if not ready:
                continue
            for _ in range(BURST):  # drain what is queued without a select per frame
                try:
                    cls, data, ts = sock.recv_raw(65535)
                except BlockingIOError:
                    break
                except (OSError, ValueError) as exc:
                    raise CaptureError(f"capture on {self.interface}: {exc}") from None
                if not data or cls is None:
                    break
                self.frames += 1
                yield (float(ts) if ts else time.time()), self._linktypes.get(cls, 1), data

    def run(
        self,
        meter: FlowMeter,
        emit: Callable[[Sequence[Event]], None],
        stop: threading.Event,
        *,
        expire_every: float = 1.0,
    ) -> None:
        """Meter frames until ``stop``; every ``expire_every`` s end quiet flows (wall clock) and emit."""
        feed = meter.feed
        while not stop.is_set():
            for ts, linktype, data in self.frames_until(time.monotonic() + expire_every):
                feed(ts, linktype, data)
                if stop.is_set():
                    break
            events = meter.expire(time.time())
            if events:
                emit(events)
        events = meter.flush()
        if events:
            emit(events)
