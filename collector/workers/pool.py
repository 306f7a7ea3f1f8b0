"""The supervisor's side: start the ingest workers on shared ports, read their links, restart the dead.

Files every worker would otherwise create at the same moment (the agent CA, the TLS server
certificates) are made here first. What the workers share while they run (rate-limit buckets, the
NetFlow exporters' owners, the workers' mailboxes) goes in a new temporary folder per run, removed
at stop: local to the host, unlike the state folder two collectors may share, and nothing of it
outlives the run. A configured port of 0 is turned into one free port for all
workers (:func:`resolve_ports`), so a test or a benchmark can still ask for "any port".
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from collector.config import CollectorConfig
from collector.metrics import receiver_drops
from collector.sockets import reserve_port
from collector.workers.link import EVENTS, FAILED, READY, STATS, STOP, decode_events, messages
from collector.workers.process import run_worker
from soc_common.ecs import Event

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
RESTART_BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
STABLE_AFTER_SECONDS = 60.0  # a worker that ran this long before dying restarts at the shortest delay


def resolve_ports(config: CollectorConfig) -> tuple[CollectorConfig, list[socket.socket]]:
    """``config`` with every enabled port of 0 replaced by a reserved free port, and the reservations."""
    held: list[socket.socket] = []

    def port(host: str, wanted: int, kind: int) -> int:
        if wanted != 0:
            return wanted
        sock = reserve_port(host, kind)
        held.append(sock)
        return int(sock.getsockname()[1])

    update: dict[str, Any] = {}
    if config.ingest.enabled:
        update["ingest"] = config.ingest.model_copy(
            update={"port": port(config.ingest.host, config.ingest.port, socket.SOCK_STREAM)}
        )
    s = config.syslog
    if s.enabled:
        kinds = {"udp_port": socket.SOCK_DGRAM, "tcp_port": socket.SOCK_STREAM, "tls_port": socket.SOCK_STREAM}
        update["syslog"] = s.model_copy(
            update={k: port(s.host, v, kinds[k]) for k in kinds if (v := getattr(s, k)) is not None}
        )
    if config.netflow.enabled:
        update["netflow"] = config.netflow.model_copy(
            update={"port": port(config.netflow.host, config.netflow.port, socket.SOCK_DGRAM)}
        )
    return config.model_copy(update=update), held


def prepare_shared_files(config: CollectorConfig) -> None:
    """Create the CA and the generated server certificates once, before the workers read them."""
    from collector.ingest.ca import CertificateAuthority

    ca = CertificateAuthority(config.ca_dir)
    if config.ingest.enabled and not (config.ingest.server_cert and config.ingest.server_key):
        ca.ensure_server_cert(config.tls_dir, config.ingest.server_names)
    s = config.syslog
    if s.enabled and s.tls_port is not None:
        from collector.syslog.tls import server_context

        server_context(s, state_dir=config.state_dir, client_auth=s.tls_client_auth, client_ca=s.tls_client_ca)


@dataclass
class _Worker:
    index: int
    process: BaseProcess
    conn: Connection
    started: float = field(default_factory=time.monotonic)
    ready: threading.Event = field(default_factory=threading.Event)
    ports: dict[str, Any] = field(default_factory=dict)
    failure: str | None = None
    snapshot: dict[str, Any] = field(default_factory=dict)
    # Set by the worker's reader thread once it has reaped the process. Only that thread waits on
    # the process: a second waiter (join, is_alive) racing it gets ECHILD, which multiprocessing
    # reads as "still running" until its timeout.
    exited: threading.Event = field(default_factory=threading.Event)


class WorkerPool:
    """``WorkerPool(config, count, on_events).start()``; ``stop()``; snapshots for /metrics and /health."""

    def __init__(
        self,
        config: CollectorConfig,
        count: int,
        on_events: Callable[[list[Event]], None] | None,
        *,
        log_level: int = logging.INFO,
    ) -> None:
        self.config, self._reserved = resolve_ports(config)
        self.count = count
        self.on_events = on_events
        self.log_level = log_level
        self.restarts = 0
        self._context = multiprocessing.get_context("spawn")  # no fork of a process with threads
        self._workers: dict[int, _Worker] = {}
        self._readers: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._shared_dir: Path | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Start every worker and wait until all are bound; raises ``OSError`` when one cannot start."""
        prepare_shared_files(self.config)
        self._shared_dir = Path(tempfile.mkdtemp(prefix="soc-collector-run-"))
        for index in range(self.count):
            self._spawn(index)
        deadline = time.monotonic() + timeout
        try:
            for worker in list(self._workers.values()):
                if not worker.ready.wait(max(deadline - time.monotonic(), 0.0)):
                    raise OSError(f"ingest worker {worker.index} did not start within {timeout:.0f} s")
                if worker.failure is not None or not worker.ports:
                    raise OSError(f"ingest worker {worker.index}: {worker.failure or 'exited at start'}")
        except OSError:
            self.stop()
            raise
        finally:
            for sock in self._reserved:  # every worker is bound (or we are giving up): let go of the port
                sock.close()
            self._reserved = []
        log.info("%d ingest workers started", self.count)

    def _spawn(self, index: int) -> None:
        here, there = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=run_worker,
            args=(self.config, index, there, self.on_events is not None, self.log_level, self._shared_dir),
            name=f"soc-collector-worker-{index}",
            daemon=True,
        )
        process.start()
        there.close()
        worker = _Worker(index, process, here)
        self._workers[index] = worker
        reader = threading.Thread(target=self._read, args=(worker,), name=f"worker-{index}-link", daemon=True)
        reader.start()
        self._readers.append(reader)

    def _read(self, worker: _Worker) -> None:
        """Dispatch one worker's messages until its pipe closes; then restart it unless stopping."""
        for kind, payload in messages(worker.conn):
            if kind == EVENTS:
                if self.on_events is not None:
                    self.on_events(decode_events(payload))
            elif kind == STATS:
                worker.snapshot = payload
            elif kind == READY:
                worker.ports = payload
                worker.ready.set()
            elif kind == FAILED:
                worker.failure = str(payload)
                worker.ready.set()
        worker.process.join(timeout=STOP_TIMEOUT_SECONDS)
        worker.exited.set()
        worker.conn.close()
        was_ready = worker.ready.is_set() and worker.failure is None
        worker.ready.set()  # whoever waits for a start learns it ended
        if self._stopping.is_set() or not was_ready:
            return
        ran = time.monotonic() - worker.started
        self.restarts += 1
        delay = RESTART_BACKOFF_SECONDS[0 if ran >= STABLE_AFTER_SECONDS else min(self.restarts, 4)]
        log.error(
            "ingest worker %d exited (code %s) after %.0f s; restarting it in %.0f s",
            worker.index,
            worker.process.exitcode,
            ran,
            delay,
        )
        if not self._stopping.wait(delay):
            self._spawn(worker.index)

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Ask every worker to stop (each drains its queues into the store), then wait for them."""
        self._stopping.set()
        workers = list(self._workers.values())
        for worker in workers:
            with contextlib.suppress(OSError, EOFError):  # already gone
                worker.conn.send((STOP, None))
        deadline = time.monotonic() + timeout
        for worker in workers:
            if not worker.exited.wait(max(deadline - time.monotonic(), 0.1)):
                log.error("ingest worker %d did not stop in time; terminating it", worker.index)
                worker.process.terminate()
                worker.exited.wait(5)
        for reader in self._readers:
            reader.join(timeout=5)
        if self._shared_dir is not None:
            shutil.rmtree(self._shared_dir, ignore_errors=True)

    # -- what the supervisor reports ---------------------------------------------------------------
    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers.values() if w.process.pid is not None]

    def ports(self) -> dict[str, Any]:
        """The bound ports, as the first worker reported them (all workers share them)."""
        for worker in self._workers.values():
            if worker.ports:
                return dict(worker.ports)
        return {}

    def metrics_texts(self) -> list[bytes]:
        return [w.snapshot["metrics"] for w in list(self._workers.values()) if "metrics" in w.snapshot]

    def receiver_stats(self, name: str) -> list[dict[str, Any]]:
        """Each worker's latest stats of its receiver ``name`` (reported every second)."""
        return [r[name] for w in list(self._workers.values()) if name in (r := w.snapshot.get("receivers", {}))]

    def health(self) -> dict[str, Any]:
        """Receivers, drops summed over the workers, and how many are alive."""
        drops: dict[str, dict[str, int]] = {}
        receivers: set[str] = set()
        ingest: dict[str, Any] | None = None
        workers = list(self._workers.values())
        for worker in workers:
            for name, stats in worker.snapshot.get("receivers", {}).items():
                receivers.add(name)
                mine = drops.setdefault(name, {})
                for reason, count in receiver_drops(stats).items():
                    mine[reason] = mine.get(reason, 0) + count
            ingest = ingest or worker.snapshot.get("ingest")
        alive = sum(1 for w in workers if w.ready.is_set() and w.failure is None and not w.exited.is_set())
        return {
            "ingest": ingest,
            "receivers": sorted(receivers),
            "receiver_drops": drops,
            "workers": {"configured": self.count, "alive": alive, "restarts": self.restarts},
        }
