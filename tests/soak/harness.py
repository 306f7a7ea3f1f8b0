"""The soak harness: the whole SOC as real processes under steady load, with faults injected on a schedule.

Brings up ``soc collector run`` (SQLite store, or Elasticsearch on osmem-server), ``soc api serve``
and N ``soc agent run`` processes enrolled with tokens, each tailing an auth.log that a generator
writes at a fixed rate, plus syslog over TCP and UDP and a NetFlow v9 stream straight to the
collector. Faults (kill -9 of the collector or API, the store unwritable, an agent's disk full, a
network partition) are injected one after another with steady load in between; the result is an
exact tally per phase and path (every record carries a sequence token), peak memory and recovery
times. ``tests/soak/test_soak_short.py`` runs the short CI form; ``bench/soak.py`` the long one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from soak_faults import NetNamespace, SmallDisk, wait_until
from soak_injectors import FAULT_TYPES
from soak_load import (
    AuthLogWriter,
    Generator,
    NetflowSender,
    PhaseClock,
    TcpSyslogSender,
    UdpSyslogSender,
)
from soak_procs import CounterTotals, MemorySampler
from soak_tally import Tally, UdpDropWatcher, tally_store

from soc_common.demo import DemoLayout, Services, free_port, run_step, soc_command, wait_http

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
FAULTS = ("collector-kill", "api-kill", "store-unavailable", "disk-full", "collector-disk-full", "partition")
# Records sent this long before a fault count for the fault: what the collector held in memory
# (syslog/NetFlow batches not yet flushed) when it was killed is lost by the kill, not by steady load.
FAULT_LEAD_IN = 2.0
StoreKind = Literal["sqlite", "elasticsearch"]


def free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class SoakSettings:
    root: Path
    agents: int = 2
    agent_rate: float = 50.0  # auth.log lines/s per agent
    syslog_tcp_rate: float = 50.0  # messages/s
    syslog_udp_rate: float = 0.0
    netflow_rate: float = 0.0  # v9 packets/s (10 flows each)
    store: StoreKind = "sqlite"
    detection: bool = True
    faults: tuple[str, ...] = FAULTS
    fault_seconds: float = 10.0  # how long each fault lasts (the store lock: at least 35 s, see below)
    fault_durations: dict[str, float] = field(default_factory=dict)  # per-fault overrides
    steady_seconds: float = 8.0  # steady load before the first fault and between faults
    recovery_timeout: float = 120.0
    drain_timeout: float = 180.0
    backoff_max: float = 5.0  # agent shipping back-off ceiling (production default 60)
    skew: timedelta = timedelta(hours=1)  # the last agent's clock runs this far ahead (its logs and its sends)
    workers: int = 1  # the collector's ingest processes (its memory is then the sum of the tree)
    collector_disk_mb: int = 4096  # tmpfs for the collector's data (collector-disk-full fault); RAM used as filled
    repo: Path = REPO


@dataclass
class PhaseResult:
    name: str
    seconds: float = 0.0
    recovery: float | None = None  # None: not a fault; nan-like "never" is reported as inf
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)
    measures: dict[str, float] = field(default_factory=dict)


@dataclass
class SoakResult:
    settings: SoakSettings
    phases: list[PhaseResult]
    tally: Tally
    memory: dict[tuple[str, str], int]
    memory_timeline: list[tuple[float, str, int]]
    peak_fds: dict[str, int]
    counters: dict[str, float]
    udp_kernel_drops: int
    skew: dict[str, Any]
    duration: float

    def phase(self, name: str) -> PhaseResult:
        return next(p for p in self.phases if p.name == name)


class SoakLayout(DemoLayout):
    """The demo layout (ports, API config, database) with the soak's collector configuration."""

    def __init__(self, root: Path, repo: Path, settings: SoakSettings, bind_ip: str, es_url: str | None) -> None:
        super().__init__(root=root, repo=repo)
        self.settings = settings
        self.bind_ip = bind_ip
        self.es_url = es_url
        self.collector_data = root / "collector"
        self.syslog_tcp = free_port()
        self.syslog_tls = free_port()
        self.syslog_udp = free_udp_port()
        self.netflow_udp = free_udp_port()

    @property
    def collector_url(self) -> str:
        return f"https://{self.bind_ip}:{self.ingest_port}"

    @property
    def events_db(self) -> Path:
        """On the collector's own disk (the collector-disk-full fault fills it)."""
        return self.collector_data / "events.db"

    def write_configs(self) -> None:
        super().write_configs()
        s = self.settings
        if s.store == "sqlite":
            store = f'kind = "sqlite"\nsqlite_path = {json.dumps(str(self.events_db))}'
        else:
            store = (
                f'kind = "elasticsearch"\nhosts = [{json.dumps(self.es_url)}]\nverify_certs = false\n'
                "replicas = 0\nretries = 2\nretry_backoff_seconds = 0.2\nrequest_timeout_seconds = 10"
            )
        self.collector_toml.write_text(
            f"""# written by the soak harness
data_dir = {json.dumps(str(self.collector_data))}
workers = {s.workers}

[ingest]
host = {json.dumps(self.bind_ip)}
port = {self.ingest_port}
server_names = [{json.dumps(self.bind_ip)}]

[store]
{store}

[detection]
enabled = {"true" if s.detection else "false"}
rule_paths = [{json.dumps(str(self.repo / "rules"))}]

[alerts]
database_url = {json.dumps(self.db_url)}

[metrics]
port = {self.metrics_port}

[syslog]
enabled = true
udp_port = {self.syslog_udp}
tcp_port = {self.syslog_tcp}
tls_port = {self.syslog_tls}
timezone = "UTC"

[netflow]
enabled = true
port = {self.netflow_udp}

[enrich]
default_site = "tinh-uy"
""",
            encoding="utf-8",
        )

    def agent_dir(self, index: int) -> Path:
        return self.root / f"agent{index}"

    def write_agent_config(self, index: int, data_dir: Path, log_file: Path) -> Path:
        path = self.root / f"agent{index}.toml"
        path.write_text(
            f"""# written by the soak harness
collector_url = {json.dumps(self.collector_url)}
data_dir = {json.dumps(str(data_dir))}
status_interval = 1.0

[host]
site = "tinh-uy"

[shipping]
flush_interval = 0.5
backoff_max = {self.settings.backoff_max}

[[sources]]
type = "files"
name = "auth"
paths = [{json.dumps(str(log_file))}]
format = "authlog"
start_at = "beginning"
poll_interval = 0.25
timezone = "UTC"
""",
            encoding="utf-8",
        )
        return path


@dataclass
class AgentProc:
    index: int
    config: Path
    data_dir: Path
    log_file: Path
    prefix: list[str]
    proc: subprocess.Popen[bytes] | None = None

    def status(self) -> dict[str, Any]:
        try:
            data = json.loads((self.data_dir / "status.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def acked(self) -> int:
        return int(self.status().get("shipping", {}).get("acked", 0))

    def pending(self) -> int:
        return int(self.status().get("spool", {}).get("pending_events", -1))


class SoakStack:
    """The running system and the faults it can be put through."""

    def __init__(self, settings: SoakSettings) -> None:
        self.settings = settings
        settings.root.mkdir(parents=True, exist_ok=True)
        self.logs = settings.root / "logs"
        self.logs.mkdir(exist_ok=True)
        self.services = Services()
        self.phases = PhaseClock("startup")
        self.memory = MemorySampler(self.phases)
        self.skipped: dict[str, str] = {}
        self.netns: NetNamespace | None = None
        self.disk: SmallDisk | None = None
        self.collector_disk: SmallDisk | None = None
        self.osmem: Any = None
        self.agents: list[AgentProc] = []
        self.generators: list[Generator] = []
        self.collector: subprocess.Popen[bytes] | None = None
        self.api: subprocess.Popen[bytes] | None = None
        self._layout: SoakLayout | None = None

    @property
    def layout(self) -> SoakLayout:
        if self._layout is None:
            raise RuntimeError("prepare() first")
        return self._layout

    def prepare(self) -> None:
        """Set up what the faults need from the OS (namespace, small disk, osmem), then the layout."""
        settings = self.settings
        bind_ip = "127.0.0.1"
        if "partition" in settings.faults:
            why = NetNamespace.unavailable()
            if why is None and settings.agents >= 2:
                self.netns = NetNamespace(os.getpid())
                self.netns.create()
                bind_ip = self.netns.host_ip
            else:
                self.skipped["partition"] = why or "needs at least 2 agents (one is partitioned)"
        if "disk-full" in settings.faults:
            why = SmallDisk.unavailable(settings.root)
            if why is None:
                self.disk = SmallDisk(settings.root / "agent0", size_mb=48)
                self.disk.mount()
            else:
                self.skipped["disk-full"] = why
        if "collector-disk-full" in settings.faults:
            why = SmallDisk.unavailable(settings.root)
            if why is None:
                self.collector_disk = SmallDisk(settings.root / "collector", size_mb=settings.collector_disk_mb)
                self.collector_disk.mount()
            else:
                self.skipped["collector-disk-full"] = why
        es_url = None
        if settings.store == "elasticsearch":
            from osmem_server import OsmemServer

            self.osmem = OsmemServer.start(japanese=False)
            es_url = self.osmem.url
        lock_seconds = settings.fault_durations.get("store-unavailable", settings.fault_seconds)
        if "store-unavailable" in settings.faults and settings.store == "sqlite" and lock_seconds < 35:
            self.skipped["store-unavailable"] = "needs fault_seconds >= 35 (the store waits 30 s for a lock)"
        self._layout = SoakLayout(settings.root, settings.repo, settings, bind_ip, es_url)
        self.metrics = CounterTotals(f"http://127.0.0.1:{self.layout.metrics_port}/metrics")
        self.udp_drops = UdpDropWatcher(self.layout.syslog_udp)

    # -- processes -----------------------------------------------------------------------------
    def _collector_args(self) -> list[str]:
        if self.settings.store == "elasticsearch":  # osmem-server needs the test-only client node
            return [
                sys.executable,
                str(HERE / "osmem_collector.py"),
                "run",
                "--config",
                str(self.layout.collector_toml),
            ]
        return soc_command("collector", "run", "--config", str(self.layout.collector_toml))

    def start_collector(self, wait: bool = True) -> None:
        self.collector = self.services.start("collector", self._collector_args(), self.logs / "collector.log")
        self.memory.watch("collector", self.collector.pid)
        if wait:
            wait_http(f"{self.layout.collector_url}/health", "collector", self.collector, timeout=120)

    def start_api(self, wait: bool = True) -> None:
        args = soc_command("api", "serve", "--config", str(self.layout.api_toml))
        self.api = self.services.start("api", args, self.logs / "api.log")
        self.memory.watch("api", self.api.pid)
        if wait:
            wait_http(f"http://127.0.0.1:{self.layout.api_port}/health", "SOC API", self.api, timeout=120)

    def kill(self, role: str, proc: subprocess.Popen[bytes] | None) -> None:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            self.memory.forget(role, proc.pid)

    def skewed_index(self) -> int | None:
        """The agent whose clock runs ahead (the last one; never agent0, the disk-full victim)."""
        index = self.settings.agents - 1
        return index if index > 0 and self.settings.skew else None

    def start_agent(self, agent: AgentProc) -> None:
        command = soc_command("agent", "run", "--config", str(agent.config))
        if agent.index == self.skewed_index():
            offset = str(self.settings.skew.total_seconds())
            command = [sys.executable, str(HERE / "skewed_agent.py"), offset, *command[3:]]
        args = agent.prefix + command
        agent.proc = self.services.start(f"agent{agent.index}", args, self.logs / f"agent{agent.index}.log")
        self.memory.watch("agent", agent.proc.pid)

    def bring_up(self) -> None:
        layout = self.layout
        layout.write_configs()
        run_step("database migration", soc_command("api", "migrate", "--config", str(layout.api_toml)))
        self.start_collector()
        self.start_api()
        fingerprint = (
            run_step(
                "CA fingerprint", soc_command("collector", "ca", "fingerprint", "--config", str(layout.collector_toml))
            )
            .strip()
            .split()[-1]
        )
        for index in range(self.settings.agents):
            data_dir = layout.agent_dir(index)
            log_file = self.settings.root / "logs-in" / f"auth{index}.log"
            config = layout.write_agent_config(index, data_dir, log_file)
            partitioned = self.netns is not None and index == 1
            prefix = self.netns.prefix() if partitioned and self.netns else []
            token = run_step(
                "enrolment token",
                soc_command(
                    "collector", "token", "create", "--site", "tinh-uy", "--config", str(layout.collector_toml)
                ),
            ).strip()
            run_step(
                f"agent{index} enrolment",
                prefix + soc_command(
                    "agent", "enroll", "--collector", layout.collector_url, "--token", token,
                    "--ca-fingerprint", fingerprint, "--config", str(config),
                ),
            )  # fmt: skip
            agent = AgentProc(index, config, data_dir, log_file, prefix)
            self.agents.append(agent)
            skew = self.settings.skew if index == self.skewed_index() else timedelta()
            self.generators.append(AuthLogWriter(f"a{index}", log_file, self.settings.agent_rate, self.phases, skew))
            self.start_agent(agent)
        s = self.settings
        if s.syslog_tcp_rate > 0:
            self.generators.append(TcpSyslogSender(("127.0.0.1", layout.syslog_tcp), s.syslog_tcp_rate, self.phases))
        if s.syslog_udp_rate > 0:
            self.generators.append(UdpSyslogSender(("127.0.0.1", layout.syslog_udp), s.syslog_udp_rate, self.phases))
        if s.netflow_rate > 0:
            budget = int(s.netflow_rate * self.planned_seconds() * 1.5) + 100
            self.generators.append(
                NetflowSender(("127.0.0.1", layout.netflow_udp), s.netflow_rate, self.phases, budget)
            )

    def planned_seconds(self) -> float:
        s = self.settings
        return s.steady_seconds * (len(s.faults) + 1) + s.fault_seconds * len(s.faults) + s.recovery_timeout

    # -- observation ----------------------------------------------------------------------------
    def health(self) -> dict[str, Any] | None:
        try:
            url = f"http://127.0.0.1:{self.layout.metrics_port}/health"
            with urllib.request.urlopen(url, timeout=3) as resp:
                data = json.loads(resp.read())
        except (urllib.error.URLError, OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def stored_count(self) -> int | None:
        health = self.health()
        if not health or health.get("status") != "ok":
            return None
        store = health.get("store") or {}
        value = store.get("count", store.get("documents"))
        return int(value) if isinstance(value, int | float) else None

    def api_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.layout.api_port}/health", timeout=3) as resp:
                return bool(resp.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def observe(self) -> None:
        self.metrics.scrape()
        self.udp_drops.poll()

    # -- teardown -------------------------------------------------------------------------------
    def close(self) -> None:
        for g in self.generators:
            g.stop()
        self.generators = []
        self.memory.stop()
        self.services.stop()
        if self.osmem is not None:
            self.osmem.close()
        if self.netns is not None:
            self.netns.destroy()
        if self.disk is not None:
            self.disk.unmount()
        if self.collector_disk is not None:
            self.collector_disk.unmount()


# -- the run ----------------------------------------------------------------------------------------
def _steady(stack: SoakStack, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        stack.observe()
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def _drain(stack: SoakStack, timeout: float) -> bool:
    """Wait until every agent's spool is empty and the store count has not moved for a few seconds."""
    stable_since = time.monotonic()
    last = -1
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.observe()
        count = stack.stored_count()
        if count != last:
            last, stable_since = count if count is not None else -1, time.monotonic()
        spools_empty = all(a.pending() == 0 for a in stack.agents)
        if spools_empty and count is not None and time.monotonic() - stable_since > 4:
            return True
        time.sleep(1.0)  # every /health read costs the collector a thread (see tests/soak/test_known_gaps.py)
    return False


def run_soak(settings: SoakSettings, progress: Callable[[str], None] = lambda _m: None) -> SoakResult:
    """Bring the stack up, run the load through every fault, drain, stop, and tally the store."""
    started = time.monotonic()
    stack = SoakStack(settings)
    phases: list[PhaseResult] = []
    try:
        stack.prepare()
        stack.memory.start()
        progress("bringing the stack up")
        stack.bring_up()
        for g in stack.generators:
            g.start()
        stack.phases.set("steady")
        progress("steady load")
        _steady(stack, settings.steady_seconds)
        for name in settings.faults:
            result = PhaseResult(name)
            phases.append(result)
            if name in stack.skipped:
                result.skipped = stack.skipped[name]
                progress(f"{name}: skipped ({result.skipped})")
                continue
            fault = FAULT_TYPES[name](stack)
            progress(f"{name}: injecting")
            stack.phases.set(name)
            _steady(stack, FAULT_LEAD_IN)
            t0 = time.monotonic()
            fault.begin()
            hold = fault.hold if fault.hold is not None else settings.fault_durations.get(name, settings.fault_seconds)
            _steady(stack, hold)
            fault.clear()
            result.recovery = wait_until(fault.recovered(), settings.recovery_timeout)
            result.seconds = time.monotonic() - t0
            result.notes = fault.notes
            result.measures = fault.measures
            progress(f"{name}: recovered in {result.recovery if result.recovery is not None else 'never'} s")
            stack.phases.set(f"after {name}")
            _steady(stack, settings.steady_seconds)
        progress("stopping the load and draining")
        stack.phases.set("drain")
        for g in stack.generators:
            g.stop()
        drained = _drain(stack, settings.drain_timeout)
        if not drained:
            progress("drain timed out: what is still spooled counts as lost")
        stack.observe()
        counters = {k: stack.metrics.total(k) for k in _COUNTERS}
        agent_skew = stack.metrics.gauges("soc_collector_agent_clock_skew")
        generators = list(stack.generators)
        stack.generators = []
        stack.memory.stop()
        stack.services.stop()  # SIGTERM: the store is closed cleanly before it is read
        tally = tally_store(stack, generators)
        return SoakResult(
            settings=settings,
            phases=phases,
            tally=tally,
            memory=dict(stack.memory.peaks),
            memory_timeline=list(stack.memory.timeline),
            peak_fds=dict(stack.memory.fds),
            counters=counters,
            udp_kernel_drops=stack.udp_drops.total,
            skew={**tally.skew, "collector_measured": agent_skew},
            duration=time.monotonic() - started,
        )
    finally:
        stack.close()
        if stack.disk is not None:
            shutil.rmtree(stack.disk.path, ignore_errors=True)


_COUNTERS = (
    'soc_collector_requests_rejected_total{reason="503"}',
    'soc_collector_events_received_total{source="syslog"}',
    'soc_collector_events_stored_total{source="syslog"}',
    'soc_collector_events_received_total{source="netflow"}',
    'soc_collector_events_stored_total{source="netflow"}',
    'soc_collector_events_stored_total{source="agent"}',
    'soc_collector_events_deduplicated_total{source="agent"}',
)
