"""The faults the soak injects: each is injected, held, cleared, then watched until the system recovers.

A fault knows how to break one thing (kill a process, lock the store, fill a disk, cut a link) and
what "working again" means for it: the store count growing past where it stood, the API answering,
or the affected agent's acknowledged count moving.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from soak_faults import SqliteWriteLock

if TYPE_CHECKING:
    from harness import SoakStack


class Fault:
    """One fault: ``inject`` it, keep it for the phase's duration, ``clear`` it, then wait for ``recovered``."""

    name = ""
    hold: float | None = None  # seconds the fault lasts; None: the soak's fault_seconds

    def __init__(self, stack: SoakStack) -> None:
        self.stack = stack
        self.notes: list[str] = []
        self.measures: dict[str, float] = {}
        self.baseline = 0

    def begin(self) -> None:
        """Remember the stored count before the fault: recovery means growing past it."""
        self.stack.observe()
        self.baseline = self.stack.stored_count() or 0
        self.inject()

    def inject(self) -> None:
        raise NotImplementedError

    def clear(self) -> None:
        raise NotImplementedError

    def recovered(self) -> Callable[[], bool]:
        """A probe that turns true once the system works again after ``clear``."""
        baseline = self.baseline

        def probe() -> bool:
            self.stack.observe()
            count = self.stack.stored_count()
            return count is not None and count > baseline

        return probe


class CollectorKill(Fault):
    """kill -9, then a restart 2 s later (what systemd's Restart=always does)."""

    name = "collector-kill"
    hold = 2.0

    def inject(self) -> None:
        self.stack.observe()  # the dying incarnation's last counters
        self.stack.kill("collector", self.stack.collector)

    def clear(self) -> None:
        self.stack.start_collector(wait=False)


class ApiKill(Fault):
    name = "api-kill"
    hold = 2.0

    def inject(self) -> None:
        self.stack.kill("api", self.stack.api)

    def clear(self) -> None:
        self.stack.start_api(wait=False)

    def recovered(self) -> Callable[[], bool]:
        return self.stack.api_healthy


class StoreUnavailable(Fault):
    """SQLite: another connection holds the write lock. Elasticsearch: the osmem process is frozen."""

    name = "store-unavailable"

    def inject(self) -> None:
        self.rejected_before = self.stack.metrics.total('soc_collector_requests_rejected_total{reason="503"}')
        if self.stack.settings.store == "sqlite":
            self.lock = SqliteWriteLock(self.stack.layout.events_db)
            self.lock.acquire()
        else:
            os.kill(self.stack.osmem.pid, signal.SIGSTOP)

    def clear(self) -> None:
        self.stack.observe()
        answered = (
            self.stack.metrics.total('soc_collector_requests_rejected_total{reason="503"}') - self.rejected_before
        )
        self.notes.append(f"ingest answered 503 {answered:.0f} times")
        self.measures["answered_503"] = answered
        if self.stack.settings.store == "sqlite":
            self.lock.release()
        else:
            os.kill(self.stack.osmem.pid, signal.SIGCONT)


class AgentFault(Fault):
    """A fault of one agent: recovered once it has caught up, i.e. acknowledged every line written so far.

    "Its acknowledged count moves" is not enough: the status file itself may have been stale during
    the fault (a full disk), and an agent whose collecting thread died still acknowledges its last
    spooled batch. Catching up with the writer is what an operator needs.
    """

    agent_index = 0

    def recovered(self) -> Callable[[], bool]:
        agent = self.stack.agents[self.agent_index]
        stream = f"a{self.agent_index}"
        writer = next(g for g in self.stack.generators if g.stream == stream)
        written = writer.sent  # lines in the file when the fault ended
        return lambda: agent.acked() >= written


class DiskFull(AgentFault):
    name = "disk-full"
    agent_index = 0

    def inject(self) -> None:
        assert self.stack.disk is not None
        self.notes.append(f"filled the agent's disk with {self.stack.disk.fill() >> 20} MiB")

    def clear(self) -> None:
        assert self.stack.disk is not None
        self.stack.disk.free()


class CollectorDiskFull(Fault):
    """The collector's data disk (event store, state) down to a few MiB free.

    SQLite fails its writes with "database or disk is full": ingest must answer 503 (agents keep
    their spools) rather than acknowledge what it could not store, and resume once space returns.
    """

    name = "collector-disk-full"

    def inject(self) -> None:
        assert self.stack.collector_disk is not None
        self.rejected_before = self.stack.metrics.total('soc_collector_requests_rejected_total{reason="503"}')
        free = self.stack.collector_disk.squeeze(keep_mb=4)
        self.notes.append(f"collector disk down to {free >> 20} MiB free")

    def clear(self) -> None:
        assert self.stack.collector_disk is not None
        self.stack.observe()
        answered = (
            self.stack.metrics.total('soc_collector_requests_rejected_total{reason="503"}') - self.rejected_before
        )
        self.notes.append(f"ingest answered 503 {answered:.0f} times")
        self.measures["answered_503"] = answered
        self.stack.collector_disk.unsqueeze()


class Partition(AgentFault):
    name = "partition"
    agent_index = 1

    def inject(self) -> None:
        assert self.stack.netns is not None
        self.stack.netns.partition()

    def clear(self) -> None:
        assert self.stack.netns is not None
        self.stack.netns.heal()


FAULT_TYPES: dict[str, type[Fault]] = {
    f.name: f for f in (CollectorKill, ApiKill, StoreUnavailable, DiskFull, CollectorDiskFull, Partition)
}
