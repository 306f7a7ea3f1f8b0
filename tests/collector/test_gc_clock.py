"""Timed garbage collection (collector.gc_clock): cycles still die, automatic collection comes back."""

from __future__ import annotations

import gc
import time
import weakref

from collector.gc_clock import TimedCollection


class _Node:
    other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def _gone_within(ref: weakref.ref[_Node], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while ref() is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    return ref() is None


def test_a_cycle_made_while_running_is_collected_by_the_clock() -> None:
    clock = TimedCollection(young_seconds=0.05).start()
    try:
        assert not gc.isenabled()
        gone = _cycle()
        assert gc.get_freeze_count() > 0  # what existed at the start is not scanned again
        assert _gone_within(gone, 5), "a cycle outlived the timed collection"
        assert clock.collections >= 1
    finally:
        clock.stop()
    assert gc.isenabled() and gc.get_freeze_count() == 0


def test_without_the_clock_the_cycle_would_stay() -> None:
    """The control: with automatic collection off and no timer, the same cycle is not freed."""
    gc.disable()
    try:
        gone = _cycle()
        assert not _gone_within(gone, 0.3)
    finally:
        gc.enable()
        gc.collect()


def test_every_nth_collection_is_a_full_one() -> None:
    full: list[int] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            full.append(1)

    clock = TimedCollection(young_seconds=0.02, full_every=3)
    gc.callbacks.append(watch)
    try:
        clock.start()
        full.clear()  # the start's own full collection
        deadline = time.monotonic() + 5
        while clock.collections < 7 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        clock.stop()
        gc.callbacks.remove(watch)
    assert clock.collections >= 6 and len(full) >= 2


def _run_with_backlog(clock: TimedCollection, seconds: float) -> None:
    clock.start()  # freezes what exists: the backlog must come after
    try:
        backlog = [[i] for i in range(600_000)]  # young containers alive at every scan
        time.sleep(seconds)
        assert len(backlog) == 600_000
    finally:
        clock.stop()


def test_an_expensive_collection_defers_the_next_ones() -> None:
    """A scan over a big live heap (a backlog) spaces the following scans so they stay a small share."""
    cheap = TimedCollection(young_seconds=0.02, max_share=1.0)
    _run_with_backlog(cheap, 0.6)
    budgeted = TimedCollection(young_seconds=0.02, max_share=0.001)
    _run_with_backlog(budgeted, 0.6)
    assert cheap.collections >= 5
    # each scan of the backlog takes milliseconds, so at 0.1 % the next one is seconds away
    # (the first tick may catch the backlog half made, so a second scan can still come early)
    assert budgeted.collections <= 2 and budgeted.deferred >= 5
