"""The collector process: opens the store, builds the pipeline, starts every receiver, shuts down cleanly.

Optional parts (detection, the SOC database, syslog, NetFlow) are imported lazily: a part that is
not installed or not yet available is logged and skipped, never fatal, so the agent ingest path
keeps working on its own. Shutdown order matters: receivers stop first (no new batches), then
detection drains, then the store closes.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import importlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any, Protocol

from collector import metrics as metrics_module
from collector.config import CollectorConfig
from collector.gc_clock import TimedCollection
from collector.ingest.ca import CertificateAuthority
from collector.ingest.registry import Registry
from collector.ingest.server import IngestServer
from collector.memory_trace import MemoryTrace
from collector.metrics import CollectorMetrics, MetricsServer, receiver_drops
from collector.pipeline.normalize import Normalize
from collector.pipeline.runner import Pipeline, build_pipeline
from collector.pipeline.sinks import DetectionEngine, DetectionSink, FanOutAlertSink, JsonlAlertSink
from collector.registry_sync import RegistrySync
from collector.store.base import EventStore
from collector.workers.mailbox import WorkerPlace
from soc_common.alert import AlertSink

if TYPE_CHECKING:
    from collector.anomaly.service import AnomalyService
    from collector.pipeline.cef_forward import CefForwarder
    from collector.workers.link import WorkerLink
    from collector.workers.pool import WorkerPool

log = logging.getLogger(__name__)


# Memory freed by a burst (a backlog draining, a big query) stays in glibc's heaps: freed chunks
# below the top of a heap are only given back by malloc_trim. Every thread that allocates may also
# get its own arena (up to 8 per core), each holding its own freed chunks; the collector runs a
# thread per request, so a small arena cap keeps the idle memory in few heaps that trimming can empty.
MALLOC_ARENAS = 2
TRIM_INTERVAL_SECONDS = 30.0
_M_ARENA_MAX = -8  # mallopt parameter number (glibc malloc.h)


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc (has malloc_trim and mallopt); None elsewhere (musl, macOS)."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
        libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


_LIBC = _glibc()


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas (as ``MALLOC_ARENA_MAX`` does) for threads started from now on."""
    if _LIBC is None:
        return False
    return bool(_LIBC.mallopt(_M_ARENA_MAX, arenas))


def trim_malloc() -> bool:
    """Give freed heap memory back to the OS (glibc ``malloc_trim(0)``); True when some was released."""
    if _LIBC is None:
        return False
    return bool(_LIBC.malloc_trim(0))


class Receiver(Protocol):
    def start(self) -> Any: ...
    def stop(self) -> None: ...
    def stats(self) -> dict[str, Any]: ...


def open_event_store(config: CollectorConfig, *, maintain: bool = True) -> EventStore:
    """The configured store; ``maintain=False`` in ingest workers (the supervisor indexes the file)."""
    from collector.store.factory import open_store

    return open_store(config.store, maintain=maintain)


def load_detector(config: CollectorConfig) -> DetectionEngine | None:
    """The Sigma engine, or None when detection is disabled or not installed."""
    if not config.detection.enabled:
        return None
    try:
        loader = importlib.import_module("collector.detection.loader")
    except ImportError as exc:
        log.warning("detection not available (%s); events are stored without detection", exc)
        return None
    paths = [p for p in config.detection.rule_paths if p.exists()]
    missing = [str(p) for p in config.detection.rule_paths if not p.exists()]
    if missing:
        log.warning("detection rule paths not found: %s", ", ".join(missing))
    if not paths:
        log.warning("no detection rules found; detection disabled")
        return None
    engine: DetectionEngine = loader.load_engine(
        paths,
        status_filter=config.detection.statuses or None,
        level_filter=config.detection.levels or None,
        cache_dir=config.state_dir / "rule-cache",
    )
    return engine


def open_alert_sink(config: CollectorConfig) -> AlertSink:
    """The SOC database sink when configured and installed, else the JSON-lines file."""
    url = config.alerts_database_url
    if url:
        try:
            from soc_api.db.migrate import upgrade
            from soc_api.db.session import make_engine, make_session_factory
            from soc_api.services.alert_sink import DatabaseAlertSink

            engine = make_engine(url)
            upgrade(url, engine=engine)
            log.info("alerts go to the SOC database")
            return DatabaseAlertSink(make_session_factory(engine))
        except ImportError as exc:
            log.warning("SOC database sink not available (%s); alerts go to %s", exc, config.alerts_jsonl_path)
        except Exception as exc:
            log.error("SOC database unusable (%s); alerts go to %s", type(exc).__name__, config.alerts_jsonl_path)
    return JsonlAlertSink(config.alerts_jsonl_path)


def _place(config: CollectorConfig, worker: WorkerLink | None) -> WorkerPlace | None:
    """Where this ingest worker stands among its collector's workers (None outside a worker)."""
    if worker is None or worker.shared_dir is None:
        return None
    return WorkerPlace(worker.shared_dir, config.worker_count, worker.index)


def _syslog_receiver(
    config: CollectorConfig, handle: Callable[[list[Any]], None], worker: WorkerLink | None
) -> Receiver:
    from collector.syslog.server import SyslogReceiver

    s = config.syslog
    return SyslogReceiver(
        s,
        handle,
        state_dir=config.state_dir,
        client_auth=s.tls_client_auth,
        client_ca=s.tls_client_ca,
        max_connections=s.max_connections,
        idle_timeout=s.idle_timeout,
        max_queued_events=s.max_queued_events,
        reuse_port=worker is not None,
        place=_place(config, worker),
    )


def _netflow_receiver(
    config: CollectorConfig, handle: Callable[[list[Any]], None], worker: WorkerLink | None
) -> Receiver:
    from collector.netflow.server import NetflowReceiver

    n = config.netflow
    return NetflowReceiver(
        n, handle, max_queued_events=n.max_queued_events, reuse_port=worker is not None, place=_place(config, worker)
    )


class Collector:
    """``Collector(config).run(stop_event)``; or ``start()`` / ``stop()`` for embedding in tests.

    Three roles, one class: with ``workers = 1`` everything runs here. With more, this process is
    the supervisor (store maintenance, retention, detection, anomaly, /metrics) and the receivers
    run in :mod:`collector.workers`, each worker a ``Collector`` given its ``worker`` link.
    """

    def __init__(
        self, config: CollectorConfig, *, store: EventStore | None = None, worker: WorkerLink | None = None
    ) -> None:
        self.config = config
        self.worker = worker
        self.pool: WorkerPool | None = None
        self.detection: DetectionSink | None = None  # the supervisor's; otherwise the pipeline's
        self._given_store = store
        self.metrics = CollectorMetrics()
        self.store: EventStore | None = None
        self.pipeline: Pipeline | None = None
        self.registry: Registry | None = None
        self.ingest: IngestServer | None = None
        self.metrics_server: MetricsServer | None = None
        self.receivers: dict[str, Receiver] = {}
        self._bound: dict[str, Any] = {}  # receiver name -> what its start() returned (its ports)
        self._stop = threading.Event()
        self._retention: threading.Thread | None = None
        self._trimmer: threading.Thread | None = None
        self.last_retention: dict[str, Any] = {}
        self.anomaly: AnomalyService | None = None
        self.forwarder: CefForwarder | None = None
        self._gc = TimedCollection()  # see collector.gc_clock
        self._memory_trace: MemoryTrace | None = None
        self.systems_sync: RegistrySync | None = None

    def _alert_sink(self) -> AlertSink:
        """Where alerts go: the SOC database (or JSON lines), plus a SIEM over syslog CEF when configured."""
        sink = open_alert_sink(self.config)
        if not self.config.forward_cef.enabled:
            return sink
        from collector.pipeline.cef_forward import CefForwarder

        self.forwarder = CefForwarder(self.config.forward_cef).start()
        return FanOutAlertSink([sink, self.forwarder])

    @property
    def supervising(self) -> bool:
        """True when this process runs ingest workers instead of receivers of its own."""
        return self.worker is None and self.config.worker_count > 1

    def start(self) -> None:
        cfg = self.config
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        self._gc.start()
        self._memory_trace = MemoryTrace(cfg.state_dir)
        self._memory_trace.start()  # only when asked for in the environment
        limit_malloc_arenas()
        metrics_module.set_active(self.metrics)
        self.store = self._given_store or open_event_store(cfg, maintain=self.worker is None)
        detector = alert_sink = None
        if self.worker is None:  # a worker forwards what it stored; the supervisor detects
            detector = load_detector(cfg)
            alert_sink = self._alert_sink() if detector is not None or cfg.anomaly.enabled else None
        if cfg.anomaly.enabled and alert_sink is not None:
            from collector.anomaly.service import AnomalyService

            self.anomaly = AnomalyService(cfg, self.store, alert_sink)
            self.anomaly.start()
        self.registry = Registry(cfg.registry_path)
        if self.worker is None:
            self.metrics.watch_agents(self.registry.last_seen_snapshot)
            if (snapshot := cfg.systems_snapshot_path) is not None:
                self.systems_sync = RegistrySync(cfg.alerts_database_url, snapshot, cfg.enrich.registry_refresh)
                self.systems_sync.start()
                self.metrics.watch_systems_registry(self.systems_sync.health)
        if self.supervising:
            self._start_workers(detector, alert_sink)
        else:
            self._start_receivers(detector, alert_sink)
        if _LIBC is not None:
            self._trimmer = threading.Thread(target=self._trim_loop, name="malloc-trim", daemon=True)
            self._trimmer.start()
        if self.worker is not None:
            return  # retention and /metrics are the supervisor's
        if cfg.retention.enabled:
            self._retention = threading.Thread(target=self._retention_loop, name="retention", daemon=True)
            self._retention.start()
        if cfg.metrics.enabled:
            self.metrics_server = MetricsServer(
                self.metrics, cfg.metrics.host, cfg.metrics.port, cfg.metrics.bearer_token, self.health
            )
            self.metrics_server.start()
        log.info("collector started (data in %s)", cfg.data_dir)

    def _start_receivers(self, detector: DetectionEngine | None, alert_sink: AlertSink | None) -> None:
        """The pipeline and the listeners in this process (one process, or one ingest worker)."""
        cfg = self.config
        assert self.store is not None and self.registry is not None
        forward = None
        if self.worker is not None and self.worker.forward_detection:
            from collector.workers.link import DetectionForwarder

            forward = DetectionForwarder(self.worker)
        self.pipeline = build_pipeline(cfg, self.store, detector, alert_sink, self.metrics, detection=forward)
        normalize = next(p for p in self.pipeline.processors if isinstance(p, Normalize))
        self.metrics.watch_clock_tags(lambda: {"clock_skew": normalize.skewed, "late_arrival": normalize.late})
        self.metrics.watch_receivers(lambda: dict(self.receivers))
        if cfg.ingest.enabled:
            ca = CertificateAuthority(cfg.ca_dir)
            self.ingest = IngestServer(
                cfg,
                self.pipeline,
                registry=self.registry,
                ca=ca,
                metrics=self.metrics,
                reuse_port=self.worker is not None,
                limits_dir=self.worker.shared_dir if self.worker is not None else None,
            )
            self.ingest.start()
        if cfg.syslog.enabled:
            self._start_receiver("syslog", _syslog_receiver)
        if cfg.netflow.enabled:
            self._start_receiver("netflow", _netflow_receiver)

    def _start_workers(self, detector: DetectionEngine | None, alert_sink: AlertSink | None) -> None:
        """Detection here, fed by the workers; the workers receive, parse, enrich and store."""
        from collector.workers.pool import WorkerPool

        if detector is not None and alert_sink is not None:
            settings = self.config.detection
            self.detection = DetectionSink(
                detector, alert_sink, self.metrics, settings.queue_batches, settings.queue_events
            )
        self.pool = WorkerPool(
            self.config,
            self.config.worker_count,
            self.detection.write if self.detection is not None else None,
            log_level=logging.getLogger().getEffectiveLevel(),
        )
        self.metrics.include(self.pool.metrics_texts)
        self.pool.start()

    def ports(self) -> dict[str, Any]:
        """The bound listening ports: ``{"ingest": n, "syslog": {"udp": n, ...}, "netflow": n}``."""
        if self.pool is not None:
            return self.pool.ports()
        out: dict[str, Any] = {"ingest": self.ingest.port} if self.ingest is not None else {}
        return out | self._bound

    def snapshot(self) -> dict[str, Any]:
        """What a worker reports to its supervisor every second (counters and receiver stats)."""
        receivers: dict[str, Any] = {}
        for name, receiver in list(self.receivers.items()):
            try:
                receivers[name] = receiver.stats()
            except Exception:
                log.exception("%s receiver stats failed", name)
        return {
            "metrics": self.metrics.render(),
            "ingest": self.ingest.health() if self.ingest else None,
            "receivers": receivers,
        }

    def _start_receiver(
        self,
        name: str,
        factory: Callable[[CollectorConfig, Callable[[list[Any]], None], WorkerLink | None], Receiver],
    ) -> None:
        assert self.pipeline is not None
        receiver = factory(self.config, self.pipeline.receiver(name), self.worker)
        try:
            self._bound[name] = receiver.start()  # the port(s) it listens on
        except OSError as exc:
            log.error("%s receiver could not start: %s", name, exc)
            return
        self.receivers[name] = receiver

    def _retention_loop(self) -> None:
        while not self._stop.wait(self.config.retention.interval):
            self.run_retention()

    def _trim_loop(self) -> None:
        """Periodic ``malloc_trim``: after a backlog drains, its memory goes back to the OS within one
        interval instead of staying as the process's new floor (a few ms of CPU per call)."""
        while not self._stop.wait(TRIM_INTERVAL_SECONDS):
            gc.collect(1)
            trim_malloc()

    def run_retention(self) -> int:
        assert self.store is not None
        cutoff = datetime.now(UTC) - timedelta(days=self.config.store.retention_days)
        try:
            deleted = self.store.delete_older_than(cutoff)
        except Exception as exc:
            log.error("retention failed: %s", exc)
            self.last_retention = {"at": datetime.now(UTC).isoformat(), "error": str(exc)}
            return 0
        self.last_retention = {"at": datetime.now(UTC).isoformat(), "deleted": deleted}
        if deleted:
            log.info("retention: %d events older than %s deleted", deleted, cutoff.date())
        return deleted

    def health(self) -> dict[str, Any]:
        """Status for /health: component states and counts, never configuration values or secrets."""
        store_state: dict[str, Any]
        try:
            store_state = dict(self.store.health() if self.store else {})
            # the stores report an unreachable backend in the document rather than by raising
            store_state["ok"] = store_state.get("reachable", True) is not False
        except Exception as exc:
            store_state = {"ok": False, "error": type(exc).__name__}
        detection = self.detection or (self.pipeline.detection if self.pipeline else None)
        out: dict[str, Any] = {
            "status": "ok" if store_state.get("ok") else "degraded",
            "store": {k: v for k, v in store_state.items() if k in ("ok", "kind", "documents", "count", "error")},
            "ingest": self.ingest.health() if self.ingest else None,
            "detection": {"enabled": detection is not None, "queue": detection.depth if detection else 0},
            "receivers": sorted(self.receivers),
            "receiver_drops": self._receiver_drops(),
            "retention": self.last_retention,
            "systems_registry": self.systems_sync.health() if self.systems_sync else None,
        }
        if self.pool is not None:  # the workers' receivers, summed
            out.update(self.pool.health())
            if out["workers"]["alive"] < out["workers"]["configured"]:
                out["status"] = "degraded"
        return out

    def _receiver_drops(self) -> dict[str, dict[str, int]]:
        """Per receiver, records lost before the pipeline by reason (UDP kernel drops, full queues...)."""
        out: dict[str, dict[str, int]] = {}
        for name, receiver in list(self.receivers.items()):
            try:
                out[name] = receiver_drops(receiver.stats())
            except Exception as exc:  # /health must answer even when one receiver cannot
                out[name] = {"error": 1}
                log.warning("%s receiver stats failed: %s", name, type(exc).__name__)
        return out

    def stop(self) -> None:
        self._stop.set()
        if self.pool is not None:
            self.pool.stop()  # each worker drains its receivers into the store and forwards to detection
        if self.ingest:
            self.ingest.stop()
        if self.forwarder is not None:
            self.forwarder.close()
        for name, receiver in self.receivers.items():
            try:
                receiver.stop()
            except Exception:
                log.exception("%s receiver did not stop cleanly", name)
        if self._retention:
            self._retention.join(timeout=5)
        if self._trimmer:
            self._trimmer.join(timeout=5)
        if self.anomaly:
            self.anomaly.stop()  # before the store closes: a cycle in progress still reads it
        if self.systems_sync is not None:
            self.systems_sync.stop()
        if self.pipeline:
            self.pipeline.close()
        if self.detection is not None:
            self.detection.close()
        if self.metrics_server:
            self.metrics_server.stop()
        if self.registry:
            self.registry.close()
        if self.store and self._given_store is None:
            self.store.close()
        if metrics_module.active() is self.metrics:
            metrics_module.set_active(None)
        self._gc.stop()
        if self._memory_trace is not None:
            self._memory_trace.stop()
        log.info("collector stopped")

    def run(self, stop_event: threading.Event | None = None) -> None:
        """Start, wait for ``stop_event`` or SIGTERM/SIGINT, stop."""
        stop = stop_event or threading.Event()
        previous: dict[signal.Signals, Any] = {}

        def _signal(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %d: shutting down", signum)
            stop.set()

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, _signal)
        try:
            self.start()
            while not stop.wait(1.0):
                pass
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            time.sleep(0)
