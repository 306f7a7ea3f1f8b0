"""Forward alerts to another SIEM as syslog CEF (TCP with RFC 6587 octet counting, TLS, or UDP).

``CefForwarder`` is an :class:`soc_common.alert.AlertSink`: the collector chains it next to its
own sink, ``emit`` only formats and queues (detection must never wait on a remote SIEM), and a
background thread sends. The queue is bounded: when the peer is away long enough to fill it, the
oldest messages are dropped and counted, so memory stays bounded and the newest alerts survive.
A failed send keeps the message at the head of the queue and reconnects with capped back-off.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from soc_common.alert import Alert
from soc_common.config import Duration, Section

log = logging.getLogger(__name__)

# CEF severity is 0-10; the usual ArcSight bands: Low 0-3, Medium 4-6, High 7-8, Very-High 9-10.
CEF_SEVERITY = {"informational": 1, "low": 3, "medium": 5, "high": 8, "critical": 10}
SYSLOG_SEVERITY = {"informational": 6, "low": 5, "medium": 4, "high": 3, "critical": 2}  # RFC 5424 codes
FACILITY_SECURITY = 13  # log audit


class CefForwardSettings(Section):
    """``[forward_cef]``: where alerts are copied to, and how."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=6514, ge=1, le=65535)
    protocol: Literal["tcp", "tls", "udp"] = "tls"
    ca_file: Path | None = None  # trust anchor of the peer's certificate (tls); empty = system store
    client_cert: Path | None = None  # our certificate when the peer asks for one (tls)
    client_key: Path | None = None
    server_name: str | None = None  # name checked in the peer certificate; empty = host
    queue_size: int = Field(default=10_000, gt=0)
    timeout: Duration = 10.0
    retry_min: Duration = 1.0
    retry_max: Duration = 60.0
    vendor: str = "SOC"
    product: str = "SOC Platform"
    product_version: str = "1.0"
    app_name: str = "soc"
    max_udp_bytes: int = Field(default=8192, ge=480)

    @model_validator(mode="after")
    def _client_pair(self) -> CefForwardSettings:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key go together")
        return self


def escape_header(value: str) -> str:
    """CEF header field: backslash and pipe escaped; newlines have no escape there, so spaces."""
    text = value.replace("\\", "\\\\").replace("|", "\\|")
    return text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def escape_extension(value: str) -> str:
    """CEF extension value: backslash, equals and line breaks escaped (pipes need none)."""
    text = value.replace("\\", "\\\\").replace("=", "\\=")
    return text.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\r")


def _extension_pairs(alert: Alert) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = [("rt", str(int(alert.timestamp.astimezone(UTC).timestamp() * 1000)))]
    first = alert.events[0] if alert.events else {}

    def field(path: str) -> object:
        node: object = first
        for part in path.split("."):
            if not isinstance(node, dict):
                return None
            node = node.get(part)
        return node

    optional: list[tuple[str, object]] = [
        ("src", alert.source_ip or field("source.ip")),
        ("spt", field("source.port")),
        ("dst", alert.destination_ip or field("destination.ip")),
        ("dpt", field("destination.port")),
        ("suser", alert.user_name),
        ("dhost", alert.host_name),
        ("cs1", alert.rule_id),
        ("cs2", ",".join(alert.techniques) or None),
        ("cs3", alert.site),
        ("cs4", alert.id),
        ("cs5", ",".join(alert.tactics) or None),
        ("cnt", len(alert.event_ids) or None),
    ]
    labels = {"cs1": "ruleId", "cs2": "attackTechniques", "cs3": "site", "cs4": "alertId", "cs5": "attackTactics"}
    for key, value in optional:
        if value is None or value == "":
            continue
        pairs.append((key, str(value)))
        if key in labels:
            pairs.append((key + "Label", labels[key]))
    if alert.drill:
        pairs.append(("cs6", "drill"))
        pairs.append(("cs6Label", "exercise"))
    return pairs


def to_cef(alert: Alert, settings: CefForwardSettings) -> str:
    """The CEF:0 line for one alert (no syslog header)."""
    header = [
        settings.vendor,
        settings.product,
        settings.product_version,
        alert.rule_id,
        alert.rule_title,
        str(CEF_SEVERITY.get(alert.severity, 5)),
    ]
    extension = " ".join(f"{k}={escape_extension(v)}" for k, v in _extension_pairs(alert))
    return "CEF:0|" + "|".join(escape_header(h) for h in header) + "|" + extension


def to_syslog(alert: Alert, settings: CefForwardSettings, hostname: str) -> bytes:
    """RFC 5424 message carrying the CEF line (no structured data, UTF-8 without BOM)."""
    pri = FACILITY_SECURITY * 8 + SYSLOG_SEVERITY.get(alert.severity, 4)
    stamp = alert.detected_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return f"<{pri}>1 {stamp} {hostname} {settings.app_name} - alert - {to_cef(alert, settings)}".encode()


def octet_frame(message: bytes) -> bytes:
    """RFC 6587 octet counting: ``<length> <message>``; a newline in the message is then harmless."""
    return str(len(message)).encode() + b" " + message


class CefForwarder:
    """``CefForwarder(settings).start()``; then ``emit(alerts)`` from any thread; ``close()``."""

    def __init__(self, settings: CefForwardSettings, hostname: str | None = None) -> None:
        self.settings = settings
        self.hostname = (hostname or socket.gethostname() or "-").replace(" ", "_")[:255]
        self.counters = {"queued": 0, "sent": 0, "dropped": 0, "send_errors": 0, "connects": 0, "too_big": 0}
        self._queue: deque[bytes] = deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._context = self._tls_context() if settings.protocol == "tls" else None

    def _tls_context(self) -> ssl.SSLContext:
        s = self.settings
        context = ssl.create_default_context(cafile=str(s.ca_file) if s.ca_file else None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if s.client_cert is not None and s.client_key is not None:
            context.load_cert_chain(str(s.client_cert), str(s.client_key))
        return context

    # -- AlertSink ---------------------------------------------------------------------------------
    def emit(self, alerts: Sequence[Alert]) -> None:
        with self._cond:
            for alert in alerts:
                message = to_syslog(alert, self.settings, self.hostname)
                if self.settings.protocol == "udp" and len(message) > self.settings.max_udp_bytes:
                    self.counters["too_big"] += 1
                    message = message[: self.settings.max_udp_bytes]
                if len(self._queue) >= self.settings.queue_size:
                    self._queue.popleft()
                    self.counters["dropped"] += 1
                self._queue.append(message)
                self.counters["queued"] += 1
            self._cond.notify()

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> CefForwarder:
        self._thread = threading.Thread(target=self._run, name="cef-forward", daemon=True)
        self._thread.start()
        return self

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the queue is empty (True) or ``timeout`` passes (False)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    def close(self, timeout: float = 5.0) -> None:
        self.flush(timeout)
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        self._disconnect()

    def stats(self) -> dict[str, int]:
        with self._cond:
            return {**self.counters, "pending": len(self._queue)}

    # -- sending -----------------------------------------------------------------------------------
    def _run(self) -> None:
        delay = self.settings.retry_min
        while not self._stop.is_set():
            with self._cond:
                while not self._queue and not self._stop.is_set():
                    self._cond.wait(0.5)
                if self._stop.is_set():
                    return
                message = self._queue[0]
            try:
                self._send(message)
            except OSError as exc:
                self.counters["send_errors"] += 1
                log.warning("CEF forward to %s:%s failed: %s", self.settings.host, self.settings.port, exc)
                self._disconnect()
                self._stop.wait(delay)
                delay = min(self.settings.retry_max, delay * 2)
                continue
            delay = self.settings.retry_min
            with self._cond:
                if self._queue and self._queue[0] is message:
                    self._queue.popleft()
                self.counters["sent"] += 1
                self._cond.notify_all()

    def _connect(self) -> socket.socket:
        s = self.settings
        if s.protocol == "udp":
            sock = socket.socket(socket.AF_INET6 if ":" in s.host else socket.AF_INET, socket.SOCK_DGRAM)
            sock.connect((s.host, s.port))
            return sock
        raw = socket.create_connection((s.host, s.port), timeout=s.timeout)
        if self._context is None:
            return raw
        try:
            return self._context.wrap_socket(raw, server_hostname=s.server_name or s.host)
        except OSError:
            raw.close()
            raise

    def _send(self, message: bytes) -> None:
        if self._sock is None:
            self._sock = self._connect()
            self.counters["connects"] += 1
        if self.settings.protocol == "udp":
            self._sock.send(message)
        else:
            self._sock.sendall(octet_frame(message))

    def _disconnect(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
