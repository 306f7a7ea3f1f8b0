"""The NetFlow v5/v9/IPFIX UDP receiver.

Two threads so the socket is always being drained: the reader only moves datagrams from the
kernel into a bounded queue; the worker decodes, builds events and hands them to the batcher,
which retries while the store is down. Every way a flow can be lost is counted in :meth:`stats`:
kernel drops (receive buffer overflow), packets refused because our queue was full, sequence gaps
reported by the exporters, data sets whose template never came, and malformed packets.

In an ingest worker (``place`` given) each exporter belongs to one worker
(:mod:`collector.netflow.owners`): the reader hands other workers' packets over to them, and a third
thread takes the packets handed to this one into the same queue.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import deque
from typing import Any

from collector import metrics
from collector.config import NetflowSettings
from collector.netflow.decoder import FlowDecoder
from collector.netflow.events import batch_events
from collector.netflow.kernel import set_receive_buffer, udp_drops
from collector.netflow.owners import ExporterOwners, Handover
from collector.sockets import share_port
from collector.syslog.batcher import Handle, RetryingBatcher
from collector.workers.mailbox import WorkerPlace

log = logging.getLogger(__name__)

MAX_DATAGRAM = 65535
MAX_QUEUED_PACKETS = 50_000  # ~70 MB of full-size export packets at worst
_HOLD_SWEEP_SECONDS = 5.0


class NetflowReceiver:
    """``NetflowReceiver(settings, handle).start()`` -> bound port; ``stop()``; ``stats()``."""

    def __init__(
        self,
        settings: NetflowSettings,
        handle: Handle,
        *,
        max_queued_events: int | None = None,
        reuse_port: bool = False,
        place: WorkerPlace | None = None,
    ) -> None:
        self.settings = settings
        self.reuse_port = reuse_port  # an ingest worker: the port is shared (collector.sockets)
        self.place = place
        self.owners: ExporterOwners | None = None
        self.handover: Handover | None = None
        self.decoder = FlowDecoder(settings.template_timeout)
        self.batcher = RetryingBatcher(
            handle,
            name="netflow",
            batch_size=settings.batch_size,
            flush_interval=settings.flush_interval,
            # Modest by default: a backlog (store slow or down) then waits as compact datagrams in
            # the packet queue (a few objects per ~30 flows) rather than as event dicts (dozens of
            # objects, ~3 KB per flow), which keeps memory flat. Nothing decoded is dropped here.
            max_queued=max_queued_events or settings.batch_size * 20,
        )
        self._packets: deque[tuple[bytes, str]] = deque()
        self._longest_packet = 0  # the longest datagram decoded so far: bounds the strings of its flows
        self._wakeup = threading.Event()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._counts = {
            "packets_received": 0,
            "bytes_received": 0,
            "packets_dropped_queue_full": 0,
            "events": 0,
            "worker_errors": 0,
            "packets_handed_over": 0,  # to the worker that owns their exporter
            "packets_taken_over": 0,  # from other workers, for exporters this one owns
            "handovers_failed": 0,  # the owner could not take the packet: decoded here instead
        }
        self.receive_buffer_bytes = 0
        self._kernel_drops_at_start = 0
        self._kernel_drops_last = 0

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> int:
        host = self.settings.host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            self.receive_buffer_bytes = set_receive_buffer(sock, self.settings.receive_buffer_bytes)
            if self.reuse_port:
                share_port(sock)
            sock.bind((host, self.settings.port))
        except OSError:
            sock.close()
            raise
        sock.settimeout(0.2)
        self._sock = sock
        self._kernel_drops_at_start = udp_drops(sock) or 0
        loops = [(self._read_loop, "netflow-reader"), (self._work_loop, "netflow-worker")]
        if self.place is not None and self.place.workers > 1:
            self.owners = ExporterOwners(self.place.folder, self.place.workers, self.place.me)
            self.handover = Handover(self.place)
            loops.append((self._take_over_loop, "netflow-handover"))
        self.batcher.start()
        for target, name in loops:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("NetFlow/IPFIX listening on udp %s:%d", host, self.port)
        return self.port

    @property
    def port(self) -> int:
        if self._sock is None:
            raise RuntimeError("not started")
        return int(self._sock.getsockname()[1])

    def stop(self) -> None:
        self._stop.set()
        self._wakeup.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self.batcher.stop()
        if self._sock is not None:
            self._kernel_drops_last = self._kernel_drops()
            self._sock.close()
        if self.handover is not None:
            self.handover.close()

    # -- threads -----------------------------------------------------------------------------------
    def _read_loop(self) -> None:
        """Per datagram: one receive into a reused buffer, then one copy into the queue, or (another
        worker owns the exporter) one send to that worker. Nothing else."""
        sock = self._sock
        assert sock is not None
        counts = self._counts
        buffer = bytearray(MAX_DATAGRAM)  # recvfrom would allocate (and shrink) 64 KiB per datagram
        view = memoryview(buffer)
        receive = sock.recvfrom_into
        owners, handover = self.owners, self.handover
        known = owners.known if owners is not None else {}
        me = self.place.me if self.place is not None else 0
        while not self._stop.is_set():
            try:
                size, addr = receive(buffer)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                log.exception("NetFlow socket error")
                time.sleep(0.1)
                continue
            counts["packets_received"] += 1
            counts["bytes_received"] += size
            exporter = addr[0]
            if owners is not None and handover is not None:
                owner = known.get(exporter)
                if owner is None:
                    owner = owners.owner(exporter)
                if owner != me:
                    if handover.send(owner, exporter, view[:size]):
                        counts["packets_handed_over"] += 1
                        continue
                    counts["handovers_failed"] += 1
            self._enqueue(view[:size].tobytes(), exporter)

    def _take_over_loop(self) -> None:
        """Packets other workers received for this worker's exporters, into the same queue."""
        assert self.handover is not None
        for message in self.handover.mailbox.messages(self._stop):
            try:
                packet, exporter = Handover.unpack(message)
            except (IndexError, UnicodeDecodeError):  # only our workers write here; still, not fatal
                self._counts["worker_errors"] += 1
                continue
            self._counts["packets_taken_over"] += 1
            self._enqueue(packet, exporter)

    def _enqueue(self, packet: bytes, exporter: str) -> None:
        if len(self._packets) >= MAX_QUEUED_PACKETS:
            self._counts["packets_dropped_queue_full"] += 1
            return
        self._packets.append((packet, exporter))
        if not self._wakeup.is_set():  # the worker is (about to be) asleep; setting costs a lock
            self._wakeup.set()

    def _work_loop(self) -> None:
        packets = self._packets
        last_sweep = time.monotonic()
        while True:
            if not packets:
                if self._stop.is_set():
                    return
                self._wakeup.wait(0.2)
                self._wakeup.clear()
            events: list[Any] = []
            while packets and len(events) < self.settings.batch_size:
                data, exporter = packets.popleft()
                if len(data) > self._longest_packet:
                    self._longest_packet = len(data)
                events.extend(self._decode(data, exporter))
            if events:
                self._counts["events"] += len(events)
                # A flow's strings come from one packet's fields (held records from earlier packets):
                # at most three characters a byte (a MAC address), plus short fixed ones.
                self.batcher.add(events, wait=None, longest=3 * self._longest_packet + 256)
            now = time.monotonic()
            if now - last_sweep > _HOLD_SWEEP_SECONDS:
                self.decoder.expire_held(now)
                last_sweep = now

    def _decode(self, data: bytes, exporter: str) -> list[Any]:
        try:
            result = self.decoder.decode(data, exporter)
            if result.errors:
                log.debug("NetFlow packet from %s: %s", exporter, "; ".join(result.errors))
            if result.missing:
                metrics.record_netflow_gap(exporter, result.missing)
            events = []
            for batch in result.batches:
                events.extend(batch_events(batch))
            return events
        except Exception:  # a decoder bug must cost one packet, not the receiver
            self._counts["worker_errors"] += 1
            log.exception("NetFlow packet from %s could not be processed", exporter)
            return []

    # -- observability -------------------------------------------------------------------------------
    def _kernel_drops(self) -> int:
        if self._sock is None or self._sock.fileno() < 0:
            return self._kernel_drops_last
        drops = udp_drops(self._sock)
        if drops is None:
            return self._kernel_drops_last
        self._kernel_drops_last = drops - self._kernel_drops_at_start
        return self._kernel_drops_last

    def stats(self) -> dict[str, Any]:
        d = self.decoder.stats
        t = self.decoder.templates.stats
        b = self.batcher.stats
        out: dict[str, Any] = dict(self._counts)
        out.update(
            kernel_drops=self._kernel_drops(),
            receive_buffer_bytes=self.receive_buffer_bytes,
            packets_queued=len(self._packets),
            records=d.records,
            options_records=d.options_records,
            malformed_packets=d.malformed_packets,
            malformed_sets=d.malformed_sets,
            unsupported_version=d.unsupported_version,
            missing_v5_flows=d.missing[5],
            missing_v9_packets=d.missing[9],
            missing_ipfix_records=d.missing[10],
            out_of_order=sum(s.out_of_order for s in self.decoder.sequences.streams.values()),
            templates_learned=t.templates_learned,
            templates_refreshed=t.templates_refreshed,
            templates_expired=t.templates_expired,
            templates_withdrawn=t.templates_withdrawn,
            sets_held=t.sets_held,
            sets_released=t.sets_released,
            sets_dropped_no_template=t.sets_dropped_no_template,
            queued=self.batcher.queued,
            batches=b.batches,
            events_handled=b.events_handled,
            handle_errors=b.handle_errors,
            dropped_queue_full=b.dropped_queue_full,
            dropped_at_shutdown=b.dropped_at_shutdown,
            exporters={
                f"{exporter}/{domain}": dict(dom.options, templates=len(dom.templates))
                for (exporter, domain), dom in list(self.decoder.templates.domains.items())
            },
        )
        return out
