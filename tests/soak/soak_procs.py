"""Watching the soak's processes: peak memory per role and phase, and the collector's counters.

Memory is sampled (psutil RSS) rather than read once at the end, because the interesting peak is
during a fault (a spool filling, a queue backing up), not after recovery. Prometheus counters reset
when the collector is killed, so the scraper keeps the last value seen from each incarnation and
adds them up.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict

import psutil
from soak_load import PhaseClock

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([-+0-9.eEinfNa]+)$")


def _children_rss(proc: psutil.Process) -> int:
    """RSS of a process's descendants (a collector with ``workers`` > 1); gone ones count nothing."""
    total = 0
    for child in proc.children(recursive=True):
        try:
            total += child.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return total


class MemorySampler:
    """Samples the RSS of registered processes once a second; keeps the peak per (phase, role)."""

    def __init__(self, phase: PhaseClock, interval: float = 1.0) -> None:
        self._phase = phase
        self.interval = interval
        self._pids: dict[str, set[int]] = defaultdict(set)
        self.peaks: dict[tuple[str, str], int] = {}
        self.fds: dict[str, int] = {}  # peak open file descriptors per role (a leak shows here first)
        self.timeline: list[tuple[float, str, int]] = []  # (seconds since start, role, RSS) every ~30 s
        self._started = time.monotonic()
        self._next_mark = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memory-sampler", daemon=True)

    def watch(self, role: str, pid: int) -> None:
        with self._lock:
            self._pids[role].add(pid)

    def forget(self, role: str, pid: int) -> None:
        with self._lock:
            self._pids[role].discard(pid)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def sample(self) -> None:
        phase = self._phase.get()
        with self._lock:
            roles = {role: set(pids) for role, pids in self._pids.items()}
        elapsed = time.monotonic() - self._started
        mark = elapsed >= self._next_mark
        if mark:
            self._next_mark = elapsed + 30.0
        for role, pids in roles.items():
            total = 0
            for pid in pids:
                try:
                    proc = psutil.Process(pid)
                    rss = proc.memory_info().rss + _children_rss(proc)  # the collector's ingest workers
                    self.fds[role] = max(self.fds.get(role, 0), proc.num_fds())
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
                total = max(total, rss)
                key = (phase, role)
                if rss > self.peaks.get(key, 0):
                    self.peaks[key] = rss
            if mark and total:
                self.timeline.append((round(elapsed), role, total))

    def peak(self, role: str, phase: str | None = None) -> int:
        return max((v for (p, r), v in self.peaks.items() if r == role and (phase is None or p == phase)), default=0)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()


def parse_metrics(text: str) -> dict[str, float]:
    """Prometheus text -> {"name{labels}": value} (comments and malformed lines skipped)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line.strip())
        if match:
            try:
                out[match.group(1) + (match.group(2) or "")] = float(match.group(3))
            except ValueError:
                continue
    return out


class CounterTotals:
    """Counters summed over collector restarts: each incarnation's last scrape is kept."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._done: dict[str, float] = defaultdict(float)  # from incarnations that ended
        self._current: dict[str, float] = {}
        self._started: float | None = None
        self._lock = threading.Lock()

    def scrape(self) -> bool:
        try:
            with urllib.request.urlopen(self.url, timeout=3) as resp:
                values = parse_metrics(resp.read().decode("utf-8", "replace"))
        except (urllib.error.URLError, OSError, ValueError):
            return False
        started = values.get("soc_collector_start_time_seconds")
        with self._lock:
            if started != self._started:  # a new collector process
                for key, value in self._current.items():
                    self._done[key] += value
                self._started = started
            self._current = values
        return True

    def total(self, name: str) -> float:
        with self._lock:
            return self._done.get(name, 0.0) + self._current.get(name, 0.0)

    def gauges(self, prefix: str) -> dict[str, float]:
        """Gauges of the running incarnation whose name starts with ``prefix`` (not summed: gauges)."""
        with self._lock:
            return {k: v for k, v in self._current.items() if k.startswith(prefix)}
