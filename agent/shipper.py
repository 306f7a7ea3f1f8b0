"""The shipper: spool -> gzip NDJSON -> ``POST /v1/events`` over mutual TLS, acknowledged after a 200.

Deliberately stdlib (``http.client`` + ``ssl``) to keep the agent small. One keep-alive connection;
errors back off exponentially with full jitter (so hundreds of agents do not reconnect in step after
a collector restart) and honour ``Retry-After``. An events-per-second cap protects weak links.
"""

from __future__ import annotations

import gzip
import http.client
import json
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from agent.config import ShippingSettings
from agent.spool import Spool
from soc_common.ecs import iso, utc_now

log = logging.getLogger(__name__)

ContextFactory = Callable[[], ssl.SSLContext | None]  # None: not enrolled yet
SENT_AT_HEADER = "X-Soc-Sent-At"


class CollectorError(Exception):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


class CollectorClient:
    """A keep-alive HTTPS connection to the collector, re-opened after any failure."""

    def __init__(self, url: str, context_factory: ContextFactory, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError(f"collector URL must be https://host[:port]: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or 8443
        self.base_path = parts.path.rstrip("/")
        self.timeout = timeout
        self._context_factory = context_factory
        self._conn: http.client.HTTPSConnection | None = None

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        if self._conn is None:
            ctx = self._context_factory()
            if ctx is None:
                raise CollectorError("not enrolled (no credentials); run 'soc agent enroll'")
            self._conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=ctx)
        try:
            self._conn.request(method, self.base_path + path, body=body, headers=headers or {})
            resp = self._conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise CollectorError(f"{type(exc).__name__}: {exc}") from None
        if resp.will_close:
            self.close()
        return Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class TokenBucket:
    """``rate`` tokens per second, bursts up to one second's worth; 0 = unlimited."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._tokens = rate
        self._last = time.monotonic()

    def take(self, n: int, stop: threading.Event) -> None:
        if self.rate <= 0:
            return
        while not stop.is_set():
            now = time.monotonic()
            self._tokens = min(self.rate, self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= min(n, self.rate):
                self._tokens -= n  # may go negative for n > rate: the debt is paid by waiting
                return
            stop.wait((min(n, self.rate) - self._tokens) / self.rate)


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class Shipper:
    """Runs in its own thread: read a batch, send it, acknowledge it, repeat."""

    def __init__(
        self,
        spool: Spool,
        settings: ShippingSettings,
        collector_url: str,
        context_factory: ContextFactory,
    ) -> None:
        self.spool = spool
        self.settings = settings
        self.collector_url = collector_url
        self._client = CollectorClient(collector_url, context_factory, settings.timeout) if collector_url else None
        self._bucket = TokenBucket(settings.eps_cap)
        self._max_events = settings.batch_max_events
        self._failures = 0
        self._lock = threading.Lock()
        self.sent = 0
        self.acked = 0
        self.duplicates = 0
        self.rejected = 0
        self.retries = 0
        self.batches = 0
        self.last_ack: str | None = None
        self.last_error: str | None = None
        self.last_error_at: str | None = None

    def update_settings(self, settings: ShippingSettings) -> None:
        """Applied between batches (central policy)."""
        self.settings = settings
        self._bucket = TokenBucket(settings.eps_cap)
        self._max_events = settings.batch_max_events
        if self._client is not None:
            self._client.timeout = settings.timeout

    def run(self, stop: threading.Event) -> None:
        if self._client is None:
            log.warning("no collector_url configured: events stay in the spool")
            stop.wait()
            return
        try:
            while not stop.is_set():
                self.spool.wait_for_data(self.settings.batch_max_events, self.settings.flush_interval)
                if stop.is_set():
                    break
                try:
                    self.ship_once(stop)
                except CollectorError as exc:
                    self._record_error(str(exc))
                    stop.wait(self._backoff(exc.retry_after))
                except Exception as exc:  # a full disk, a bug: back off and keep shipping, never die
                    log.exception("shipping failed")
                    self._record_error(f"{type(exc).__name__}: {exc}")
                    stop.wait(self._backoff(None))
        finally:
            self._client.close()

    def drain(self, stop: threading.Event, timeout: float) -> bool:
        """Ship until the spool is empty (one-shot commands); True when everything was acknowledged."""
        deadline = time.monotonic() + timeout
        while self.spool.pending_events and time.monotonic() < deadline and not stop.is_set():
            try:
                self.ship_once(stop)
            except CollectorError as exc:
                self._record_error(str(exc))
                stop.wait(min(self._backoff(exc.retry_after), max(0.0, deadline - time.monotonic())))
        return self.spool.pending_events == 0

    def ship_once(self, stop: threading.Event) -> int:
        """Send one batch; return the number of events acknowledged. Raises CollectorError to retry."""
        if self._client is None:
            raise CollectorError("no collector_url configured")
        cap = self.settings.eps_cap
        max_events = min(self._max_events, int(cap)) if cap >= 1 else self._max_events
        cursor, records = self.spool.read_records(max_events, self.settings.batch_max_bytes)
        if not records:
            if cursor.events == 0 and (cursor.segment, cursor.offset) != (
                cursor.start_segment,
                cursor.start_offset,
            ):
                self.spool.ack(cursor)  # only damaged records were skipped
            return 0
        self._bucket.take(len(records), stop)
        body = b"\n".join(records) + b"\n"
        # X-Soc-Sent-At lets the collector measure this host's clock skew (docs/agent-protocol.md).
        headers = {"Content-Type": "application/x-ndjson", SENT_AT_HEADER: iso(utc_now())}
        if self.settings.gzip:
            body = gzip.compress(body, compresslevel=3)
            headers["Content-Encoding"] = "gzip"
        with self._lock:
            self.sent += len(records)
        resp = self._client.request("POST", "/v1/events", body, headers)
        if resp.status == 200:
            self._accepted(resp.body, len(records))
            self.spool.ack(cursor)
            self._failures = 0
            self._max_events = self.settings.batch_max_events
            return len(records)
        if resp.status == 413 and len(records) > 1:
            self._max_events = max(1, len(records) // 2)
            raise CollectorError("batch too large (413); halving it", retry_after=0.0)
        if resp.status == 413:
            log.error("collector refuses a single event as too large; dropping it")
            with self._lock:
                self.rejected += 1
            self.spool.ack(cursor)
            return 0
        detail = resp.body[:200].decode("utf-8", "replace")
        if resp.status in (401, 403):
            raise CollectorError(f"collector refused this agent (HTTP {resp.status}): {detail}")
        raise CollectorError(f"HTTP {resp.status}: {detail}", retry_after=_retry_after(resp.headers.get("retry-after")))

    def _accepted(self, body: bytes, count: int) -> None:
        try:
            answer = json.loads(body) if body else {}
        except ValueError:
            answer = {}
        rejected = answer.get("rejected") if isinstance(answer, dict) else None
        rejected = rejected if isinstance(rejected, list) else []
        for item in rejected[:10]:
            log.warning("collector rejected an event: %s", item)
        with self._lock:
            self.acked += count
            self.batches += 1
            self.rejected += len(rejected)
            self.duplicates += int(answer.get("duplicates", 0) or 0) if isinstance(answer, dict) else 0
            self.last_ack = iso(utc_now())

    def _record_error(self, message: str) -> None:
        with self._lock:
            self.retries += 1
            self.last_error = message
            self.last_error_at = iso(utc_now())
        log.warning("shipping failed (attempt %d): %s", self._failures + 1, message)

    def _backoff(self, retry_after: float | None) -> float:
        """Full jitter: uniform(0, min(max, initial * 2^n)), but never sooner than Retry-After."""
        ceiling = min(self.settings.backoff_max, self.settings.backoff_initial * (2**self._failures))
        self._failures = min(self._failures + 1, 30)
        delay = random.uniform(0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.settings.backoff_max))
        return delay

    def status(self) -> dict[str, Any]:
        with self._lock:
            return {
                "collector_url": self.collector_url,
                "sent": self.sent,
                "acked": self.acked,
                "duplicates": self.duplicates,
                "rejected": self.rejected,
                "retries": self.retries,
                "batches": self.batches,
                "last_ack": self.last_ack,
                "last_error": self.last_error,
                "last_error_at": self.last_error_at,
                "consecutive_failures": self._failures,
            }
