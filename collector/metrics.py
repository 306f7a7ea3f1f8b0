"""Prometheus metrics of the collector, and the small HTTP server that exposes them.

Metrics live in their own registry (not the process-global one) so several collectors can run in
one test process. Receivers written elsewhere report through the module-level functions
(:func:`record_netflow_gap`), which write to whichever collector is active.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from collector.metrics_merge import merge_expositions

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _LastSeenLag(Collector):
    """Per-agent seconds since last heard from, computed at scrape time."""

    def __init__(self, source: Callable[[], dict[str, datetime]]) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "soc_collector_agent_last_seen_lag_seconds",
            "Seconds since each agent was last heard from",
            labels=["agent"],
        )
        now = datetime.now(UTC)
        try:
            seen = self._source()
        except Exception:  # a scrape must not fail because the registry is busy
            log.exception("last-seen lookup failed")
            seen = {}
        for agent, when in seen.items():
            family.add_metric([agent], max(0.0, (now - when).total_seconds()))
        yield family


# Receiver stats() keys that count records lost before they reached the pipeline, by loss reason.
# Syslog and NetFlow name the kernel counter differently; both land under reason="kernel".
RECEIVER_DROP_KEYS: dict[str, str] = {
    "udp_kernel_drops": "kernel",
    "kernel_drops": "kernel",
    "packets_dropped_queue_full": "packet_queue_full",
    "dropped_queue_full": "queue_full",
    "dropped_at_shutdown": "shutdown",
    "sets_dropped_no_template": "no_template",
    "malformed_packets": "malformed",
    "missing_v5_flows": "sequence_gap",
    "missing_v9_packets": "sequence_gap",
    "missing_ipfix_records": "sequence_gap",
}
# Receiver stats() keys exported as they are (counters that only grow; gauges for the queue depths).
RECEIVER_COUNTER_KEYS = (
    "received", "parsed", "failed", "truncated", "packets_received", "records", "events",
    "packets_handed_over", "packets_taken_over", "handovers_failed",  # between ingest workers: NetFlow
    "lines_handed_over", "lines_taken_over",  # and syslog streams
)  # fmt: skip
RECEIVER_GAUGE_KEYS = ("queued", "packets_queued", "connections_active", "receive_buffer_bytes")


def receiver_drops(stats: dict[str, Any]) -> dict[str, int]:
    """``{reason: count}`` from one receiver's stats(): what /metrics and /health both report."""
    out: dict[str, int] = {}
    for key, reason in RECEIVER_DROP_KEYS.items():
        value = stats.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            out[reason] = out.get(reason, 0) + value
    return out


class _ClockTags(Collector):
    """Events Normalize tagged for their timestamp (clock_skew, late_arrival), read at scrape time."""

    def __init__(self, source: Callable[[], dict[str, int]]) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(
            "soc_collector_events_clock_tagged",
            "Events whose @timestamp was far ahead of (clock_skew) or behind (late_arrival) their ingest time",
            labels=["tag"],
        )
        for tag, count in sorted(self._source().items()):
            family.add_metric([tag], count)
        yield family


class _SystemsRegistry(Collector):
    """The copy of the SOC registry's asset links (``collector.registry_sync``), read at scrape time."""

    def __init__(self, source: Callable[[], dict[str, Any]]) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        state = self._source()
        links = GaugeMetricFamily("soc_collector_systems_registry_links", "Asset links in the registry's last copy")
        links.add_metric([], state["links"])
        failures = CounterMetricFamily(
            "soc_collector_systems_registry_copy_failures", "Registry copies that failed (the last copy is kept)"
        )
        failures.add_metric([], state["failures"])
        yield links
        yield failures
        if state["copied_s_ago"] is not None:
            age = GaugeMetricFamily("soc_collector_systems_registry_age_seconds", "Seconds since the last copy")
            age.add_metric([], state["copied_s_ago"])
            yield age


class _ReceiverStats(Collector):
    """UDP/TCP receiver counters (drops above all), read from each receiver's stats() at scrape time.

    The receivers keep their own counters (cheap, per burst); converting them at scrape time keeps
    the hot receive loops free of Prometheus calls.
    """

    def __init__(self, source: Callable[[], dict[str, Any]]) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        dropped = CounterMetricFamily(
            "soc_collector_receiver_dropped",
            "Lost before the pipeline, by reason. Datagrams: kernel (UDP receive buffer overflow), "
            "packet_queue_full, malformed. Events: queue_full, shutdown. Data sets: no_template. "
            "sequence_gap: flows per exporter sequence numbers (NetFlow v9: export packets)",
            labels=["receiver", "reason"],
        )
        counters = CounterMetricFamily(
            "soc_collector_receiver_records", "Receiver record counters, by kind", labels=["receiver", "kind"]
        )
        gauges = GaugeMetricFamily(
            "soc_collector_receiver_state", "Receiver queue depths and buffers", labels=["receiver", "kind"]
        )
        try:
            receivers = self._source()
        except Exception:  # a scrape must not fail because a receiver is starting or stopping
            log.exception("receiver stats lookup failed")
            receivers = {}
        for name, receiver in sorted(receivers.items()):
            try:
                stats = receiver.stats()
            except Exception:
                log.exception("%s receiver stats failed", name)
                continue
            for reason, value in sorted(receiver_drops(stats).items()):
                dropped.add_metric([name, reason], value)
            for key in RECEIVER_COUNTER_KEYS:
                if isinstance(stats.get(key), int):
                    counters.add_metric([name, key], stats[key])
            for key in RECEIVER_GAUGE_KEYS:
                if isinstance(stats.get(key), int):
                    gauges.add_metric([name, key], stats[key])
        yield dropped
        yield counters
        yield gauges


class _ClockSkew(Collector):
    """Per-agent clock skew (agent - collector, seconds) and the largest absolute one, at scrape time."""

    def __init__(self, source: Callable[[], dict[str, float]]) -> None:
        self.source = source

    def collect(self) -> Iterable[Metric]:
        per_agent = GaugeMetricFamily(
            "soc_collector_agent_clock_skew_seconds",
            "How far each agent's clock is ahead of the collector's (negative: behind), from its last batch",
            labels=["agent"],
        )
        largest = GaugeMetricFamily(
            "soc_collector_agent_clock_skew_max_abs_seconds", "Largest absolute agent clock skew, seconds"
        )
        try:
            skews = self.source()
        except Exception:
            log.exception("clock skew lookup failed")
            skews = {}
        for agent, seconds in skews.items():
            per_agent.add_metric([agent], seconds)
        largest.add_metric([], max((abs(s) for s in skews.values()), default=0.0))
        yield per_agent
        yield largest


class CollectorMetrics:
    _clock_skew: _ClockSkew | None = None
    _included: Callable[[], Sequence[bytes]] | None = None

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.received = Counter("soc_collector_events_received", "Records received", ["source"], registry=r)
        self.parsed = Counter("soc_collector_events_parsed", "Records parsed into events", ["source"], registry=r)
        self.failed = Counter("soc_collector_events_failed", "Records rejected or unparsable", ["source"], registry=r)
        self.stored = Counter("soc_collector_events_stored", "Events newly stored", ["source"], registry=r)
        self.deduplicated = Counter(
            "soc_collector_events_deduplicated",
            "Events already stored (same event.id)",
            ["source"],
            registry=r,
        )
        self.rejected_requests = Counter(
            "soc_collector_requests_rejected", "Ingest requests refused, by reason", ["reason"], registry=r
        )
        self.queue_depth = Gauge("soc_collector_queue_depth", "Batches waiting, by queue", ["queue"], registry=r)
        self.store_latency = Histogram(
            "soc_collector_store_write_seconds",
            "Event store write latency",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=r,
        )
        self.store_errors = Counter("soc_collector_store_errors", "Store writes that failed", registry=r)
        self.processor_events = Counter(
            "soc_collector_processor_events",
            "Events through each pipeline processor",
            ["processor"],
            registry=r,
        )
        self.processor_errors = Counter(
            "soc_collector_processor_errors",
            "Processor failures (batch passed on unchanged)",
            ["processor"],
            registry=r,
        )
        self.processor_seconds = Counter(
            "soc_collector_processor_seconds",
            "Time spent in each pipeline processor",
            ["processor"],
            registry=r,
        )
        self.alerts = Counter("soc_collector_detection_alerts", "Alerts raised, by level", ["level"], registry=r)
        self.detection_errors = Counter("soc_collector_detection_errors", "Detection batches that failed", registry=r)
        self.alert_sink_errors = Counter("soc_collector_alert_sink_errors", "Alert batches not delivered", registry=r)
        self.netflow_gaps = Counter(
            "soc_collector_netflow_sequence_gaps",
            "Flows missing per NetFlow/IPFIX sequence numbers",
            ["exporter"],
            registry=r,
        )
        self.bad_sent_at = Counter(
            "soc_collector_agent_bad_sent_at",
            "Agent batches whose X-Soc-Sent-At header did not parse (the batch itself is accepted)",
            registry=r,
        )
        self.up_since = Gauge("soc_collector_start_time_seconds", "Start time (Unix)", registry=r)
        self.up_since.set(time.time())

    def watch_agents(self, source: Callable[[], dict[str, datetime]]) -> None:
        self.registry.register(_LastSeenLag(source))

    def watch_receivers(self, source: Callable[[], dict[str, Any]]) -> None:
        """Export the drop and record counters of the receivers ``source()`` returns (name -> receiver)."""
        self.registry.register(_ReceiverStats(source))

    def watch_systems_registry(self, source: Callable[[], dict[str, Any]]) -> None:
        """Export the registry copy's links, age and failures (``source()``: ``RegistrySync.health``)."""
        self.registry.register(_SystemsRegistry(source))

    def watch_clock_tags(self, source: Callable[[], dict[str, int]]) -> None:
        """Export how many events Normalize tagged clock_skew / late_arrival (``source()``: tag -> count)."""
        self.registry.register(_ClockTags(source))

    def watch_clock_skew(self, source: Callable[[], dict[str, float]]) -> None:
        """Export agents' clock skew; a later call (a restarted ingest server) replaces the source."""
        if self._clock_skew is None:
            self._clock_skew = _ClockSkew(source)
            self.registry.register(self._clock_skew)
        else:
            self._clock_skew.source = source

    def include(self, texts: Callable[[], Sequence[bytes]]) -> None:
        """Add ``texts()`` (the ingest workers' latest expositions) to what :meth:`render` returns."""
        self._included = texts

    def render(self) -> bytes:
        own = generate_latest(self.registry)
        if self._included is None:
            return own
        return merge_expositions([own, *self._included()])


_active: CollectorMetrics | None = None


def set_active(metrics: CollectorMetrics | None) -> None:
    global _active
    _active = metrics


def active() -> CollectorMetrics | None:
    return _active


def record_netflow_gap(exporter: str, missing: int) -> None:
    """Called by the NetFlow receiver when sequence numbers show ``missing`` lost flows/packets."""
    if _active is not None and missing > 0:
        _active.netflow_gaps.labels(exporter=exporter).inc(missing)


class MetricsServer:
    """``/metrics`` (Prometheus text, bearer token if configured) and ``/health`` (JSON, no secrets)."""

    def __init__(
        self,
        metrics: CollectorMetrics,
        host: str,
        port: int,
        bearer_token: str | None,
        health: Callable[[], dict[str, Any]],
    ) -> None:
        self.metrics = metrics
        self._server = ThreadingHTTPServer((host, port), self._handler(metrics, bearer_token, health))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @staticmethod
    def _handler(
        metrics: CollectorMetrics, token: str | None, health: Callable[[], dict[str, Any]]
    ) -> type[BaseHTTPRequestHandler]:
        expected = f"Bearer {token}".encode() if token else None

        class Handler(BaseHTTPRequestHandler):
            server_version = "soc-collector"
            sys_version = ""

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("metrics %s " + format, self.client_address[0], *args)

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                if status == 401:
                    self.send_header("WWW-Authenticate", "Bearer")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/health":
                    body = json.dumps(health(), default=str).encode()
                    self._send(200, body, "application/json")
                elif path == "/metrics":
                    given = self.headers.get("Authorization", "").encode()
                    if expected is not None and not hmac.compare_digest(given, expected):
                        self._send(401, b"unauthorized\n", "text/plain")
                        return
                    self._send(200, metrics.render(), CONTENT_TYPE)
                else:
                    self._send(404, b"not found\n", "text/plain")

        return Handler

    def start(self) -> int:
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,), name="metrics", daemon=True)
        self._thread.start()
        return self.port

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)
