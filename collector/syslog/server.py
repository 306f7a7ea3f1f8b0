"""The syslog receiver: UDP, TCP (octet-counted or line framing) and TLS (RFC 5425).

A thread per listener and per TCP/TLS connection: blocking reads keep the code plain, and a
connection whose sender is slow or stuck only holds its own thread. Parsed events go to a shared
:class:`RetryingBatcher`; when it is full, TCP/TLS readers simply stop reading (the sender's own
queue absorbs the pressure, which is what rsyslog and syslog-ng expect), while UDP counts the loss.

In an ingest worker (``place`` given) the TCP/TLS streams' lines are shared out among the workers
(:mod:`collector.syslog.share`): a thread takes the chunks other workers hand to this one.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

from collector.config import SyslogSettings
from collector.netflow.kernel import set_receive_buffer, udp_drops
from collector.sockets import share_port
from collector.syslog.batcher import Handle, RetryingBatcher
from collector.syslog.framing import Frame, StreamFramer
from collector.syslog.message import MessageParser
from collector.syslog.share import StreamShare
from collector.syslog.tls import ClientAuth, server_context
from collector.workers.mailbox import WorkerPlace
from soc_common.ecs import Event

log = logging.getLogger(__name__)

UDP_BUFFER_BYTES = 8 * 1024 * 1024
UDP_BURST = 256  # datagrams parsed before handing them over together
UDP_HOLD = 0.01  # seconds of sender silence after which a partial burst is handed over
UDP_MAX_HOLD = 0.1  # a partial burst is handed over at least this often under a steady trickle
UDP_QUEUE_WAIT = 1.0  # seconds a UDP burst may wait for room before it is counted as dropped
READ_BYTES = 256 * 1024
HANDSHAKE_TIMEOUT = 10.0
_POLL = 0.5


class _Counters:
    """Thread-safe counters; updated once per burst/read, not per message."""

    NAMES = (
        "received", "parsed", "failed", "truncated", "bytes_received", "framing_errors",
        "connections_total", "connections_refused", "connections_closed_idle", "tls_handshake_failures",
        "lines_handed_over", "lines_taken_over", "handovers_failed",  # stream lines between workers
    )  # fmt: skip

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values = dict.fromkeys(self.NAMES, 0)

    def add(self, **deltas: int) -> None:
        with self._lock:
            for name, delta in deltas.items():
                self.values[name] += delta

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.values)


class SyslogReceiver:
    """``SyslogReceiver(settings, handle).start()`` -> ``{"udp": port, "tcp": port, "tls": port}``."""

    def __init__(
        self,
        settings: SyslogSettings,
        handle: Handle,
        *,
        state_dir: Path | None = None,
        client_auth: ClientAuth = "optional",
        client_ca: Path | None = None,
        tls_context: ssl.SSLContext | None = None,
        max_connections: int = 1024,
        idle_timeout: float = 900.0,
        max_queued_events: int | None = None,
        reuse_port: bool = False,
        place: WorkerPlace | None = None,
    ) -> None:
        self.settings = settings
        self.reuse_port = reuse_port  # an ingest worker: the ports are shared (collector.sockets)
        self.place = place
        self.share: StreamShare | None = None
        self.parser = MessageParser(settings.timezone)
        self.batcher = RetryingBatcher(
            handle,
            name="syslog",
            batch_size=settings.batch_size,
            flush_interval=settings.flush_interval,
            max_queued=max_queued_events or settings.batch_size * 200,
        )
        self.state_dir = state_dir
        self.client_auth: ClientAuth = client_auth
        self.client_ca = client_ca
        self._tls_context = tls_context
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.counters = _Counters()
        self.ports: dict[str, int] = {}
        self._stop = threading.Event()
        self._listeners: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()
        self._conn_threads: set[threading.Thread] = set()
        self._conn_lock = threading.Lock()
        self._udp: socket.socket | None = None
        self._udp_drops_at_start = 0

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> dict[str, int]:
        s = self.settings
        family = socket.AF_INET6 if ":" in s.host else socket.AF_INET
        try:
            if s.udp_port is not None:
                self._udp = socket.socket(family, socket.SOCK_DGRAM)
                self._listeners.append(self._udp)
                set_receive_buffer(self._udp, UDP_BUFFER_BYTES)
                if self.reuse_port:
                    share_port(self._udp)
                self._udp.bind((s.host, s.udp_port))
                self._udp.settimeout(_POLL)
                self._udp_drops_at_start = udp_drops(self._udp) or 0
                self.ports["udp"] = self._udp.getsockname()[1]
                self._spawn(self._udp_loop, "syslog-udp")
            if s.tcp_port is not None:
                self.ports["tcp"] = self._listen(family, s.tcp_port, None)
            if s.tls_port is not None:
                ctx = self._tls_context or server_context(
                    s, state_dir=self.state_dir, client_auth=self.client_auth, client_ca=self.client_ca
                )
                self.ports["tls"] = self._listen(family, s.tls_port, ctx)
            streams = s.tcp_port is not None or s.tls_port is not None
            if self.place is not None and self.place.workers > 1 and streams:
                self.share = StreamShare(self.place)
                self._spawn(self._take_over_loop, "syslog-share")
        except OSError:
            self.stop()
            raise
        self.batcher.start()
        log.info("syslog listening on %s %s", s.host, self.ports)
        return dict(self.ports)

    def _listen(self, family: socket.AddressFamily, port: int, ctx: ssl.SSLContext | None) -> int:
        sock = socket.socket(family, socket.SOCK_STREAM)
        self._listeners.append(sock)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.reuse_port:
            share_port(sock)
        sock.bind((self.settings.host, port))
        sock.listen(128)
        sock.settimeout(_POLL)
        self._spawn(self._accept_loop, "syslog-tls" if ctx else "syslog-tcp", sock, ctx)
        return int(sock.getsockname()[1])

    def _spawn(self, target: Any, name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in list(self._threads):
            thread.join(timeout=5)
        with self._conn_lock:
            readers = list(self._conn_threads)
        for thread in readers:  # each sees the stop flag within one poll interval
            thread.join(timeout=5)
        with self._conn_lock:
            for conn in self._connections:
                _close(conn)
        for sock in self._listeners:
            _close(sock)
        if self.share is not None:
            self.share.close()
        self.batcher.stop()

    # -- UDP ---------------------------------------------------------------------------------------
    def _udp_loop(self) -> None:
        """Drain the socket without blocking, parse datagrams as they come, hand them over in bursts.

        The socket is non-blocking: a datagram costs one ``recvfrom`` (a socket with a timeout
        polls before every read), and the loop waits in ``poll`` only once the socket is empty.
        Parsed events are held until a burst is full, the sender pauses for ``UDP_HOLD`` seconds
        or they are ``UDP_MAX_HOLD`` old: the batcher's lock and the counters are paid per burst.
        """
        sock = self._udp
        assert sock is not None
        sock.setblocking(False)
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        limit = self.settings.max_message_bytes
        parse = self.parser.parse
        recvfrom = sock.recvfrom
        stopping = self._stop.is_set
        events: list[Event] = []
        nbytes = truncated = longest = 0
        held_until = 0.0
        while not stopping():
            try:
                data, addr = recvfrom(65535)
            except BlockingIOError:
                if events and time.monotonic() >= held_until:
                    self._hand_over_udp(events, nbytes, truncated, longest)
                    events, nbytes, truncated, longest = [], 0, 0, 0
                if not poller.poll(UDP_HOLD * 1000 if events else _POLL * 1000) and events:
                    self._hand_over_udp(events, nbytes, truncated, longest)  # the sender paused
                    events, nbytes, truncated, longest = [], 0, 0, 0
                continue
            except OSError:
                if stopping():
                    break
                log.exception("syslog UDP socket error")
                continue
            if not events:
                held_until = time.monotonic() + UDP_MAX_HOLD
            nbytes += len(data)
            if len(data) > longest:
                longest = len(data)
            if len(data) > limit:
                truncated += 1
                events.append(parse(data[:limit], addr[0], addr[1], truncated=True))
            else:
                events.append(parse(data, addr[0], addr[1]))
            if len(events) >= UDP_BURST:
                self._hand_over_udp(events, nbytes, truncated, longest)
                events, nbytes, truncated, longest = [], 0, 0, 0
        if events:
            self._hand_over_udp(events, nbytes, truncated, longest)

    def _hand_over_udp(self, events: list[Event], nbytes: int, truncated: int, longest: int) -> None:
        self._count(events, nbytes, truncated)
        # refused events are counted there
        self.batcher.add(events, wait=UDP_QUEUE_WAIT, longest=_strings_bound(longest))

    # -- TCP / TLS ------------------------------------------------------------------------------------
    def _accept_loop(self, listener: socket.socket, ctx: ssl.SSLContext | None) -> None:
        while not self._stop.is_set():
            try:
                conn, addr = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                log.exception("syslog accept failed")
                continue
            with self._conn_lock:
                full = len(self._connections) >= self.max_connections
                if not full:
                    self._connections.add(conn)
            if full:
                self.counters.add(connections_refused=1)
                _close(conn)
                continue
            self.counters.add(connections_total=1)
            thread = threading.Thread(
                target=self._serve, args=(conn, addr, ctx), name=f"syslog-conn-{addr[0]}", daemon=True
            )
            with self._conn_lock:
                self._conn_threads.add(thread)
            thread.start()

    def _serve(self, conn: socket.socket, addr: Any, ctx: ssl.SSLContext | None) -> None:
        stream: socket.socket = conn
        try:
            if ctx is not None:
                conn.settimeout(HANDSHAKE_TIMEOUT)
                try:
                    stream = ctx.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError) as exc:
                    self.counters.add(tls_handshake_failures=1)
                    log.info("syslog TLS handshake with %s failed: %s", addr[0], exc)
                    return
            self._read_stream(stream, addr[0], addr[1])
        except Exception:  # one connection's failure must never reach the listener
            log.exception("syslog connection from %s failed", addr[0])
        finally:
            with self._conn_lock:
                self._connections.discard(conn)
                self._conn_threads.discard(threading.current_thread())
            _close(stream)

    def _read_stream(self, stream: socket.socket, ip: str, port: int) -> None:
        framer = StreamFramer(self.settings.max_message_bytes)
        stream.settimeout(_POLL)
        idle = 0.0
        while not self._stop.is_set():
            try:
                data = stream.recv(READ_BYTES)
            except TimeoutError:
                idle += _POLL
                if idle >= self.idle_timeout:
                    self.counters.add(connections_closed_idle=1)
                    break
                continue
            except (ssl.SSLError, OSError):
                data = b""
            idle = 0.0
            frames = framer.feed(data) if data else framer.flush()
            if frames and self.share is not None:
                frames, handed, failed = self.share.share_out(frames, ip, port)
                if handed or failed:
                    self.counters.add(lines_handed_over=handed, handovers_failed=failed)
            if frames:
                self._take(frames, ip, port, len(data))
            elif data:
                self.counters.add(bytes_received=len(data))
            if not data:
                break
        if framer.framing_errors:
            self.counters.add(framing_errors=framer.framing_errors)

    def _take(self, frames: list[Frame], ip: str, port: int, nbytes: int = 0) -> None:
        """Parse framed lines from ``ip``:``port`` and queue their events for the pipeline."""
        events = [self.parser.parse(f.data, ip, port, truncated=f.truncated) for f in frames]
        self._count(events, nbytes, sum(f.truncated for f in frames))
        self.batcher.add(events, wait=None, longest=_strings_bound(max([len(f.data) for f in frames])))

    def _take_over_loop(self) -> None:
        """Chunks of stream lines other workers read and handed to this one, parsed here."""
        assert self.share is not None
        for message in self.share.mailbox.messages(self._stop):
            try:
                frames, ip, port = StreamShare.unpack(message)
            except ValueError as exc:  # only our workers write here; still, never fatal
                log.warning("syslog hand-over chunk dropped: %s", exc)
                continue
            if frames:
                self.counters.add(lines_taken_over=len(frames))
                self._take(frames, ip, port)

    def _count(self, events: list[Event], nbytes: int, truncated: int) -> None:
        failed = sum(1 for e in events if "soc" in e and "parse_error" in e["soc"])
        self.counters.add(
            received=len(events), parsed=len(events) - failed, failed=failed, truncated=truncated, bytes_received=nbytes
        )

    # -- observability -------------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = self.counters.snapshot()
        b = self.batcher.stats
        with self._conn_lock:
            active = len(self._connections)
        drops = udp_drops(self._udp) if self._udp is not None and self._udp.fileno() >= 0 else None
        out.update(
            connections_active=active,
            udp_kernel_drops=(drops - self._udp_drops_at_start) if drops is not None else 0,
            queued=self.batcher.queued,
            batches=b.batches,
            events_handled=b.events_handled,
            handle_errors=b.handle_errors,
            dropped_queue_full=b.dropped_queue_full,
            dropped_at_shutdown=b.dropped_at_shutdown,
            ports=dict(self.ports),
        )
        return out


def _strings_bound(longest_message: int) -> int:
    """How long a string in events parsed from messages of at most ``longest_message`` bytes can be.

    Every field is a piece of the message (decoding never makes more characters than bytes; CEF
    unescaping only shortens), except fixed short ones (ids, tags, the sender's address) and a parse
    error that may quote a piece of the message with its escapes (at most four characters a byte).
    """
    return 4 * longest_message + 256


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()
