"""The agent process: sources -> spool -> shipper, plus central policy and the status file.

Each source runs in its own thread under a supervisor that restarts it with back-off when it
crashes, so one bad input or plug-in never takes the agent (or the other sources) down.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import platform
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from agent.config import AgentConfig, HostLabels, SourceEntry
from agent.enroll import Credentials
from agent.plugins import PluginRegistry, registry
from agent.policy import PolicyClient, effective_config
from agent.shipper import CollectorClient, Shipper
from agent.sources.base import Emit, Source
from agent.spool import Spool, SpoolFull, SpoolLocked
from agent.status import status_path, write_status
from soc_common import __version__
from soc_common.config import ConfigError
from soc_common.ecs import Event, iso, new_event, put, utc_now

log = logging.getLogger(__name__)

AGENT_TYPE = "soc-agent"
RESTART_MIN, RESTART_MAX = 1.0, 60.0
SHUTDOWN_FLUSH_SECONDS = 5.0
ONESHOT_DIR = "oneshot"  # private spools of one-shot commands; the running agent adopts leftovers


def host_id(data_dir: Path) -> str:
    """The machine id where the OS has one, else a random id kept in the data folder."""
    for candidate in (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id")):
        with contextlib.suppress(OSError):
            value = candidate.read_text().strip()
            if value:
                return value
    path = data_dir / "host_id"
    with contextlib.suppress(OSError):
        return path.read_text().strip()
    value = uuid.uuid4().hex
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(value)
    return value


class EventStamper:
    """Adds who-sent-this fields to every event (host.*, agent.*, soc.site/zone/system_id)."""

    def __init__(self, config: AgentConfig, agent_id: str | None) -> None:
        self.hostname = socket.gethostname()
        self.host_id = host_id(config.data_dir)
        self.agent_id = agent_id
        self.labels = config.host
        self._agent_fields: dict[str, str] = {"type": AGENT_TYPE, "version": __version__, "name": self.hostname}
        if agent_id:
            self._agent_fields["id"] = agent_id

    def __call__(self, event: Event) -> None:
        # Plain dict operations: this runs for every event, at tens of thousands per second.
        host = event.get("host")
        if not isinstance(host, dict):
            host = event["host"] = {}
        host.setdefault("name", self.hostname)
        host.setdefault("id", self.host_id)
        agent = event.get("agent")
        if not isinstance(agent, dict):
            agent = event["agent"] = {}
        agent.update(self._agent_fields)
        if self._labels:
            soc = event.get("soc")
            if not isinstance(soc, dict):
                soc = event["soc"] = {}
            for key, value in self._labels:
                soc.setdefault(key, value)

    @property
    def labels(self) -> HostLabels:
        return self._host_labels

    @labels.setter
    def labels(self, labels: HostLabels) -> None:
        self._host_labels = labels
        self._labels = [(k, v) for k in ("site", "zone", "system_id") if (v := getattr(labels, k))]


#: a young generation larger than one source batch (2,000 lines make ~30,000 small containers) lets
#: most events die by reference counting before a collection ever walks them: ~5% less CPU per line
#: than 10,000 in an in-process tail->spool->gzip loop; at most this many cyclic objects wait to be collected
GC_THRESHOLDS = (50_000, 20, 20)


def tune_gc() -> None:
    """Make the cyclic garbage collector cheap for a process that churns through small dicts.

    Every event is a handful of dicts that reference counting frees at once (they form no cycles),
    yet with the default thresholds each 700 allocations trigger a collection and every few
    thousand events a full one that re-walks every object the imports created. Freezing what exists
    after start-up and collecting young objects less often measured about 8% less CPU per line;
    memory is unaffected because the garbage here is not cyclic.
    """
    if gc.get_threshold() == GC_THRESHOLDS:
        return  # already tuned: freezing again would pin objects that later become cyclic garbage
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def agent_event(action: str, message: str, outcome: str = "success", **fields: Any) -> Event:
    event = new_event(kind="event", dataset="soc.agent", module="soc")
    put(event, "event.action", action)
    put(event, "event.outcome", outcome)
    put(event, "message", message)
    for key, value in fields.items():
        put(event, f"soc.agent.{key}", value)
    return event


def spool_emitter(spool: Spool, stamp: Callable[[Event], None], stop: threading.Event) -> Emit:
    """The ``emit`` a source gets: stamp, then wait for the spool as long as needed (on_full=block)."""

    def emit(events: Sequence[Event]) -> None:
        for event in events:
            stamp(event)
        while True:
            try:
                spool.append(events)
                return
            except SpoolFull:
                if stop.is_set():
                    raise  # the source must not record these events as done
                log.debug("spool full; source paused")

    return emit


class SourceRunner:
    """Runs one configured source in a thread; restarts it with back-off when it fails."""

    def __init__(
        self,
        entry: SourceEntry,
        plugins: PluginRegistry,
        spool: Spool,
        stamp: Callable[[Event], None],
        context: dict[str, Any] | None = None,
    ) -> None:
        self.entry = entry
        self._context = context or {}
        self._plugins = plugins
        self._spool = spool
        self._stamp = stamp
        self.stop_event = threading.Event()
        self.source: Source | None = None
        self.restarts = 0
        self.events = 0
        self.last_error: str | None = None
        self.last_error_at: str | None = None
        self._inner_emit = spool_emitter(spool, stamp, self.stop_event)
        self._thread = threading.Thread(target=self._loop, name=f"source-{entry.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stop_event.set()

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self.stop_event.is_set()

    def _emit(self, events: Sequence[Event]) -> None:
        self._inner_emit(events)
        self.events += len(events)

    def _loop(self) -> None:
        delay = RESTART_MIN
        while not self.stop_event.is_set():
            started = time.monotonic()
            try:
                self.source = self._plugins.create(
                    self.entry.type, self.entry.name, self.entry.options(), self._context
                )
                self.source.run(self._emit, self.stop_event)
                if self.stop_event.is_set():
                    return
                self._failed("the source stopped by itself")
            except Exception as exc:
                if self.stop_event.is_set() and isinstance(exc, SpoolFull):
                    return
                log.exception("source %s failed", self.entry.name)
                self._failed(f"{type(exc).__name__}: {exc}")
            if time.monotonic() - started > RESTART_MAX:
                delay = RESTART_MIN  # it ran fine for a while: start the back-off afresh
            self.stop_event.wait(delay)
            delay = min(delay * 2, RESTART_MAX)
            self.restarts += 1

    def _failed(self, message: str) -> None:
        self.last_error = message
        self.last_error_at = iso(utc_now())
        notice = agent_event(
            "source_error",
            f"source {self.entry.name} ({self.entry.type}) failed: {message}",
            outcome="failure",
            source={"name": self.entry.name, "type": self.entry.type},
        )
        self._stamp(notice)
        # a full disk (ENOSPC) must not kill the supervisor: the source is retried with back-off
        with contextlib.suppress(SpoolFull, OSError):
            self._spool.append([notice], timeout=1.0)

    def status(self) -> dict[str, Any]:
        base: dict[str, Any] = {"name": self.entry.name, "type": self.entry.type}
        if self.source is not None:
            with contextlib.suppress(Exception):  # a plug-in's status() must not break ours
                base.update(self.source.status())
        base.update(
            running=self.running,
            events=self.events,
            restarts=self.restarts,
            supervisor_error=self.last_error,
            supervisor_error_at=self.last_error_at,
        )
        if not base.get("last_error"):
            base["last_error"] = self.last_error
        return base


class Agent:
    """The whole agent; ``run(stop)`` blocks until ``stop`` is set, then shuts down cleanly."""

    def __init__(self, config: AgentConfig, *, plugins: PluginRegistry = registry) -> None:
        self.local_config = config
        self.config = config
        self.plugins = plugins
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.credentials = Credentials.load(config.data_dir)
        self.stamper = EventStamper(config, self.credentials.agent_id if self.credentials else None)
        self.spool = Spool(config.data_dir / "spool", config.spool, stamp=self.stamper)
        self.collector_url = config.collector_url or (self.credentials.collector_url if self.credentials else "")
        self.shipper = Shipper(self.spool, config.shipping, self.collector_url, self._ssl_context)
        self.policy: PolicyClient | None = None
        if self.collector_url:
            client = CollectorClient(self.collector_url, self._ssl_context, config.shipping.timeout)
            self.policy = PolicyClient(client, config.data_dir / "policy.json")
        self.runners: dict[str, SourceRunner] = {}
        self.policy_error: str | None = None
        self.started = iso(utc_now())
        self.state = "starting"

    def _ssl_context(self) -> Any:
        creds = Credentials.load(self.config.data_dir)
        return creds.ssl_context() if creds else None

    # ---- sources ----------------------------------------------------------------------------
    def apply_sources(self, entries: list[SourceEntry]) -> None:
        """Start new sources, restart changed ones, stop removed ones; unchanged ones keep running."""
        wanted = {e.name: e for e in entries}
        for name, runner in list(self.runners.items()):
            if name not in wanted or wanted[name].model_dump() != runner.entry.model_dump():
                runner.stop()
                if not runner.join(10.0):
                    log.warning("source %s did not stop within 10 s", name)
                del self.runners[name]
        for name, entry in wanted.items():
            if name not in self.runners:
                runner = SourceRunner(entry, self.plugins, self.spool, self.stamper, self._source_context())
                self.runners[name] = runner
                runner.start()

    def _source_context(self) -> dict[str, Any]:
        data_dir = self.config.data_dir
        return {"data_dir": data_dir, "state_dir": data_dir / "offsets", "host_id": self.stamper.host_id}

    def apply_config(self, config: AgentConfig) -> None:
        self.config = config
        self.stamper.labels = config.host
        self.spool.settings = config.spool
        self.shipper.update_settings(config.shipping)
        self.apply_sources(config.sources)

    def _initial_config(self) -> AgentConfig:
        if self.policy is not None and self.policy.policy is not None:
            try:
                return effective_config(self.local_config, self.policy.policy, self.policy.version, self.plugins)
            except ConfigError as exc:
                self.policy_error = str(exc)
                log.error("cached central policy not usable, running the local configuration: %s", exc)
        return self.local_config

    def poll_policy(self) -> None:
        if self.policy is None or not self.policy.poll() or self.policy.policy is None:
            return
        try:
            config = effective_config(self.local_config, self.policy.policy, self.policy.version, self.plugins)
        except ConfigError as exc:
            self.policy_error = str(exc)
            log.error("central policy rejected, keeping the current configuration: %s", exc)
            return
        self.policy_error = None
        log.info("applying central policy version %s", self.policy.version)
        self.apply_config(config)

    # ---- main loop ----------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        tune_gc()
        ship_stop = threading.Event()
        shipper = threading.Thread(target=self.shipper.run, args=(ship_stop,), name="shipper", daemon=True)
        shipper.start()
        self.state = "running"
        started = agent_event("started", f"agent {__version__} started on {platform.node()}")
        self.stamper(started)
        with contextlib.suppress(SpoolFull):
            self.spool.append([started], timeout=1.0)
        self.apply_config(self._initial_config())
        next_status = next_policy = 0.0
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now >= next_policy:
                    next_policy = now + self.config.policy.poll_interval
                    self.poll_policy()
                if now >= next_status:
                    next_status = now + self.config.status_interval
                    self.adopt_oneshot_spools()
                    self.write_status()
                stop.wait(min(next_policy, next_status) - time.monotonic())
        finally:
            self.shutdown(ship_stop, shipper)

    def shutdown(self, ship_stop: threading.Event, shipper: threading.Thread) -> None:
        self.state = "stopping"
        for runner in self.runners.values():
            runner.stop()
        for runner in self.runners.values():
            runner.join(10.0)
        # Everything is already durable in the spool; give the shipper a moment to send the tail.
        deadline = time.monotonic() + SHUTDOWN_FLUSH_SECONDS
        while self.collector_url and self.spool.pending_events and time.monotonic() < deadline:
            if self.shipper.status()["consecutive_failures"]:
                break
            time.sleep(0.05)
        ship_stop.set()
        shipper.join(self.config.shipping.timeout + 1)
        self.state = "stopped"
        self.write_status()
        self.spool.close()

    def adopt_oneshot_spools(self) -> None:
        """Move what one-shot commands left behind (``--no-wait``, timeouts) into our spool."""
        root = self.config.data_dir / ONESHOT_DIR
        if not root.is_dir():
            return
        for directory in sorted(p for p in root.iterdir() if p.is_dir()):
            try:
                other = Spool(directory, self.config.spool)
            except SpoolLocked:
                continue  # its command is still running
            try:
                while True:
                    cursor, records = other.read_records(5000, 8 * 1024 * 1024)
                    if not records and cursor.events == 0:
                        other.ack(cursor)
                        break
                    self.spool.append_raw(records, timeout=1.0)
                    other.ack(cursor)
            except SpoolFull:
                other.close()
                continue  # our spool is full; try again later
            other.close()
            shutil.rmtree(directory, ignore_errors=True)
            log.info("adopted the spooled events of %s", directory.name)

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "version": __version__,
            "pid": os.getpid(),
            "started": self.started,
            "updated": iso(utc_now()),
            "written_epoch": time.time(),
            "interval": self.config.status_interval,
            "agent_id": self.stamper.agent_id,
            "hostname": self.stamper.hostname,
            "sources": [r.status() for r in self.runners.values()],
            "spool": self.spool.status(),
            "shipping": self.shipper.status(),
            "policy": {
                "version": self.policy.version if self.policy else None,
                "last_error": self.policy_error or (self.policy.last_error if self.policy else None),
            },
        }

    def write_status(self) -> None:
        try:
            write_status(status_path(self.config.data_dir), self.status())
        except OSError as exc:
            log.error("cannot write the status file: %s", exc)


class OneShot:
    """A finite stream of events (pcap replay, EVTX import, log file) through the normal spool/shipper path.

    It uses a private spool under ``data_dir/oneshot`` (the agent service holds the main one), so it
    works whether or not the service runs; whatever is not acknowledged when it ends is adopted and
    sent by the running agent.
    """

    def __init__(self, config: AgentConfig) -> None:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        creds = Credentials.load(config.data_dir)
        self.collector_url = config.collector_url or (creds.collector_url if creds else "")
        self.stamper = EventStamper(config, creds.agent_id if creds else None)
        self.directory = config.data_dir / ONESHOT_DIR / f"{int(time.time() * 1000)}-{os.getpid()}"
        self.spool = Spool(self.directory, config.spool, stamp=self.stamper)
        self.shipper = Shipper(self.spool, config.shipping, self.collector_url, self._ssl_context)
        self._data_dir = config.data_dir
        self.stop = threading.Event()
        self.emit = spool_emitter(self.spool, self.stamper, self.stop)
        self.spooled = 0
        self._thread = threading.Thread(target=self.shipper.run, args=(self.stop,), name="shipper", daemon=True)
        if self.collector_url:
            self._thread.start()

    def _ssl_context(self) -> Any:
        creds = Credentials.load(self._data_dir)
        return creds.ssl_context() if creds else None

    def send(self, events: Sequence[Event]) -> None:
        self.emit(events)
        self.spooled += len(events)

    def finish(self, wait: bool, timeout: float, progress: Callable[[int, int], None] | None = None) -> int:
        """Wait (optionally) until everything is acknowledged; return how many events are still spooled."""
        deadline = time.monotonic() + timeout
        while wait and self.collector_url and self.spool.pending_events and time.monotonic() < deadline:
            if progress is not None:
                progress(self.shipper.acked, self.spooled)
            time.sleep(0.1)
        if progress is not None:
            progress(self.shipper.acked, self.spooled)
        self.stop.set()
        if self._thread.is_alive():
            self._thread.join(self.shipper.settings.timeout + 1)
        left = self.spool.pending_events
        self.spool.close()
        if left == 0:
            shutil.rmtree(self.directory, ignore_errors=True)
        return left
