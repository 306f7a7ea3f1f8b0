"""The rate limiter the ingest workers share (collector.ingest.ratelimit.SharedRateLimiter): the same answers
as the in-memory one, eviction from a full table, and one budget per key across real processes."""

from __future__ import annotations

import multiprocessing
import random
from collections.abc import Iterator
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from collector.ingest import ratelimit
from collector.ingest.ratelimit import RateLimiter, SharedRateLimiter, key_hash, open_limiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def shared(tmp_path: Path, clock: Clock) -> Iterator[SharedRateLimiter]:
    limiter = SharedRateLimiter(tmp_path / "t.buckets", rate=10, burst=20, clock=clock)
    yield limiter
    limiter.close()


def test_debt_and_retry_after(shared: SharedRateLimiter, clock: Clock) -> None:
    assert shared.admit("a", 25) == 0  # more than the burst still gets through once: 5 in debt
    assert shared.admit("a", 1) == 1  # 0.5 s of debt, rounded up
    assert shared.admit("b", 20) == 0  # another key has its own bucket
    clock.now += 0.5
    assert shared.admit("a", 1) == 0  # paid off: admitted, 1 in debt again
    assert shared.admit("a", 0) == 1
    assert shared.admit("c", 200) == 0
    assert shared.admit("c", 1) == 18  # 180 in debt at 10/s
    clock.now += 17.5
    assert shared.admit("c", 1) == 1
    clock.now += 1000
    assert shared.admit("c", 21) == 0 and shared.admit("c", 0) == 1  # refilled to the burst, not beyond


def test_answers_like_the_in_memory_limiter(shared: SharedRateLimiter, clock: Clock) -> None:
    memory = RateLimiter(rate=10, burst=20, clock=clock)
    rng = random.Random(7)
    for _ in range(3000):
        clock.now += rng.choice([0.0, 0.0, 0.01, 0.3, 2.0])
        key, amount = f"agent-{rng.randrange(12)}", rng.choice([0, 1, 5, 19, 40])
        assert shared.admit(key, amount) == memory.admit(key, amount)


def test_every_opener_of_the_file_sees_the_same_buckets(shared: SharedRateLimiter, clock: Clock) -> None:
    other = SharedRateLimiter(shared.path, rate=10, burst=20, clock=clock)
    try:
        assert shared.admit("a", 20) == 0
        assert other.admit("a", 1) == 0 and other.admit("a", 1) == 1
    finally:
        other.close()


def test_a_full_window_gives_up_the_bucket_that_is_full_soonest(tmp_path: Path, clock: Clock) -> None:
    table = SharedRateLimiter(tmp_path / "small.buckets", rate=1, burst=10, slots=4, window=4, clock=clock)
    try:
        assert table.admit("idle", 0) == 0 and _occupied(table) == 0  # a full new bucket is not recorded
        assert table.admit("idle", 1) == 0  # full again 1 s later
        assert table.admit("d30", 40) == 0  # 30 in debt: full in 40 s
        assert table.admit("d10", 20) == 0
        assert table.admit("d20", 30) == 0
        assert _occupied(table) == 4
        clock.now += 5
        assert table.admit("new-1", 30) == 0  # evicts "idle", full already: nothing forgotten
        assert table.admit("d10", 0) == 5 and table.admit("d20", 0) == 15 and table.admit("d30", 0) == 25
        assert table.admit("new-2", 11) == 0  # every bucket still refilling: the smallest debt goes
        assert table.admit("d10", 0) == 0  # forgotten: a new, full bucket
        assert [table.admit(k, 0) for k in ("d20", "d30", "new-1", "new-2")] == [15, 25, 20, 1]
    finally:
        table.close()


def test_a_file_of_another_size_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "odd.buckets"
    path.write_bytes(b"\0" * 100)
    with pytest.raises(ValueError, match="not a table"):
        SharedRateLimiter(path, rate=1, burst=1)


def test_open_limiter_shares_only_in_a_worker(tmp_path: Path) -> None:
    assert isinstance(open_limiter("agents", 1, 1), RateLimiter)
    limiter = open_limiter("agents", 1, 1, tmp_path)
    assert isinstance(limiter, SharedRateLimiter) and limiter.path == tmp_path / "agents.buckets"
    limiter.close()


def _occupied(table: SharedRateLimiter) -> int:
    return sum(1 for i in range(table.slots) if ratelimit.SLOT.unpack_from(table._map, i * ratelimit.SLOT.size)[0])


def test_key_hash_is_stable_across_processes() -> None:
    assert key_hash("agent-1") == 0x4A3465837DBA8306  # blake2b, not the per-process salted hash()


# -- real processes ----------------------------------------------------------------------------------

RATE, BURST, AMOUNT, SECONDS, PROCESSES = 200.0, 100.0, 10, 1.0, 3


def _hammer(path: Path | None, start: Barrier, results: Any) -> None:
    """Admit batches for one key as fast as possible for SECONDS; report (admitted, first, last) times."""
    import time

    limiter = SharedRateLimiter(path, RATE, BURST) if path else RateLimiter(RATE, BURST)
    start.wait()
    admitted, began = 0, time.monotonic()
    while time.monotonic() - began < SECONDS:
        if limiter.admit("agent-1", AMOUNT) == 0:
            admitted += AMOUNT
    results.put((admitted, began, time.monotonic()))


def _run_processes(path: Path | None) -> tuple[list[int], float]:
    """Admitted per process, and the most the one budget allows over the time they ran."""
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [ctx.Process(target=_hammer, args=(path, start, results)) for _ in range(PROCESSES)]
    for proc in procs:
        proc.start()
    reports = [results.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(timeout=10)
        assert proc.exitcode == 0
    elapsed = max(r[2] for r in reports) - min(r[1] for r in reports)
    # admission needs a bucket out of debt, so the last batch can overdraw it by at most AMOUNT
    return [r[0] for r in reports], BURST + RATE * elapsed + AMOUNT


def test_processes_sharing_the_file_share_one_budget(tmp_path: Path) -> None:
    admitted, bound = _run_processes(tmp_path / "agents.buckets")
    assert all(n > 0 for n in admitted), admitted  # every process got some: they really competed
    assert sum(admitted) <= bound, (admitted, bound)
    assert sum(admitted) >= 0.8 * (BURST + RATE * SECONDS), admitted  # and the budget is used, not starved


def test_per_process_buckets_break_that_bound(tmp_path: Path) -> None:
    """The control: the assertion above tells shared buckets from per-process ones."""
    admitted, bound = _run_processes(None)
    assert sum(admitted) > 1.5 * bound, (admitted, bound)
