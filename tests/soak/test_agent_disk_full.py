"""The agent on a disk that fills up and is freed again: found by the soak's disk-full fault.

A real tmpfs of a few MiB holds the agent's data folder (mounting needs root; elsewhere these skip).
Both guard bugs the soak hit (now fixed): after ENOSPC the agent process kept running and reported
"running", but stopped collecting or stopped shipping for good.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from soak_faults import SmallDisk

from agent.config import AgentConfig
from agent.spool import Spool
from soc_common.ecs import new_event


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    why = SmallDisk.unavailable(tmp_path)
    if why is not None:
        pytest.skip(why)
    disk = SmallDisk(tmp_path / "disk", size_mb=4)
    disk.mount()
    yield disk
    disk.unmount()


def _events(n: int) -> list[dict]:
    return [new_event(dataset="test.disk", event_id=f"disk-{i}") | {"message": "x" * 200} for i in range(n)]


def test_acknowledging_on_a_full_disk_does_not_raise(small_disk: SmallDisk) -> None:
    spool = Spool(small_disk.path / "spool", AgentConfig().spool)
    try:
        spool.append(_events(50))
        cursor, records = spool.read_records(100, 1 << 20)
        assert len(records) == 50
        small_disk.fill(keep_kb=0)
        spool.ack(cursor)  # the collector has the events; failing to persist the cursor only risks a re-send
        small_disk.free()
        assert spool.pending_events == 0
    finally:
        small_disk.free()
        spool.close()


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the bug: its thread dies
def test_a_source_that_failed_on_a_full_disk_is_restarted(small_disk: SmallDisk, tmp_path: Path) -> None:
    from agent.runtime import Agent

    log_file = tmp_path / "auth.log"
    log_file.write_text("")
    config = AgentConfig.model_validate(
        {
            "data_dir": str(small_disk.path / "agent"),
            "status_interval": 0.5,
            "sources": [
                {"type": "files", "name": "auth", "paths": [str(log_file)], "start_at": "beginning",
                 "poll_interval": 0.1, "format": "authlog"},
            ],
        }
    )  # fmt: skip
    agent = Agent(config)
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    try:
        line = "Nov 21 10:00:00 pc sshd[1]: Failed password for invalid user u{} from 10.0.0.1 port 1 ssh2\n"
        with log_file.open("a") as fh:
            for i in range(20):
                fh.write(line.format(i))
        deadline = time.monotonic() + 20
        while agent.spool.pending_events < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert agent.spool.pending_events >= 20, "the source never read the file"
        small_disk.fill(keep_kb=0)
        with log_file.open("a") as fh:
            for i in range(20, 4000):
                fh.write(line.format(i))
        runner = agent.runners["auth"]
        deadline = time.monotonic() + 20
        while runner.last_error is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert runner.last_error is not None, "the full disk never reached the source"
        small_disk.free()
        deadline = time.monotonic() + 15  # the first restart comes RESTART_MIN (1 s) after a failure
        while agent.spool.pending_events < 4000 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert runner.running, "the source supervisor died"
        assert agent.spool.pending_events >= 4000, agent.spool.pending_events
    finally:
        small_disk.free()
        stop.set()
        thread.join(timeout=30)


def test_spool_accepts_events_again_after_a_failed_write_and_roll(small_disk: SmallDisk) -> None:
    settings = AgentConfig.model_validate({"spool": {"segment_bytes": 256 * 1024}}).spool
    spool = Spool(small_disk.path / "spool", settings)
    try:
        spool.append(_events(400))  # ~100 KiB: past the size at which an acknowledged segment is rolled
        small_disk.fill(keep_kb=0)
        with pytest.raises(OSError):  # ENOSPC at flush: a small batch stays in the file's buffer
            for _ in range(1000):  # the last page of the segment file may still hold a few
                spool.append(_events(5))
        cursor, _ = spool.read_records(100_000, 1 << 24)
        with contextlib.suppress(OSError):
            spool.ack(cursor)  # everything delivered: the spool rolls to a fresh segment
        small_disk.free()
        spool.append(_events(10))  # space is back: the agent must collect again
        assert spool.pending_events >= 10
    finally:
        small_disk.free()
        spool.close()
