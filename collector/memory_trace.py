"""Where the collector's Python memory grows: an opt-in tracemalloc report, for diagnosing a leak.

Set ``SOC_TRACEMALLOC=<frames>`` in the service's environment (25 is a good start) and
every process of the collector (the supervisor and each ingest worker) traces its allocations and,
once a minute, writes the allocation sites that grew most since it started to
``<state_dir>/tracemalloc-<pid>.txt``. Tracing costs about twice the CPU and a third more memory,
so it is for a diagnosis, not for production. Native memory (SQLite's page caches, glibc's free
lists) is not Python's and does not appear: compare the report's total with the process's RSS.
"""

from __future__ import annotations

import logging
import os
import tracemalloc
from pathlib import Path

from collector.ticker import Ticker

log = logging.getLogger(__name__)

ENV = "SOC_TRACEMALLOC"  # not SOC_COLLECTOR_*: that prefix overrides configuration keys
REPORT_SECONDS = 60.0
TOP = 25


class MemoryTrace:
    """Started only when :data:`ENV` asks for it; ``stop()`` writes a last report."""

    def __init__(self, state_dir: Path, interval: float = REPORT_SECONDS) -> None:
        self.path = state_dir / f"tracemalloc-{os.getpid()}.txt"
        self._ticker = Ticker("memory-trace", interval, self.write)
        self._baseline: tracemalloc.Snapshot | None = None

    def start(self) -> bool:
        frames = os.environ.get(ENV, "").strip()
        if not frames:
            return False
        tracemalloc.start(max(1, int(frames)))
        self._baseline = tracemalloc.take_snapshot()
        self._ticker.start()
        log.warning("tracing Python allocations (%s=%s): reports in %s", ENV, frames, self.path)
        return True

    def stop(self) -> None:
        if not self._ticker.running:
            return
        self._ticker.stop()
        self.write()
        tracemalloc.stop()

    def write(self) -> None:
        """The allocation sites that grew most since the start, biggest first (tracebacks innermost last)."""
        if self._baseline is None or not tracemalloc.is_tracing():
            return
        current, peak = tracemalloc.get_traced_memory()
        lines = [f"traced {current / 2**20:.1f} MiB (peak {peak / 2**20:.1f} MiB)"]
        for stat in tracemalloc.take_snapshot().compare_to(self._baseline, "traceback")[:TOP]:
            lines.append(f"\n{stat.size_diff / 2**20:+.2f} MiB in {stat.count_diff:+d} blocks")
            lines.extend(stat.traceback.format())
        try:
            self.path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        except OSError as exc:
            log.warning("cannot write %s: %s", self.path, exc)
