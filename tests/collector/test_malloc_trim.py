"""Returning freed heap memory to the OS: the glibc hooks and the collector's periodic trim thread."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from collector import runtime
from collector.config import CollectorConfig
from collector.runtime import Collector, limit_malloc_arenas, trim_malloc

glibc_only = pytest.mark.skipif(runtime._LIBC is None, reason="needs glibc (malloc_trim/mallopt); not this libc")


@glibc_only
def test_trim_gives_back_a_freed_burst() -> None:
    # 1 KiB bytes objects come from malloc (over pymalloc's 512-byte limit), not from mmap: freeing
    # them leaves free chunks inside the heap that only malloc_trim returns.
    burst = [bytes(1000) for _ in range(40_000)]
    del burst
    assert trim_malloc() is True


@glibc_only
def test_arena_cap_is_accepted() -> None:
    assert limit_malloc_arenas(runtime.MALLOC_ARENAS) is True


def test_without_glibc_the_hooks_are_no_ops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "_LIBC", None)
    assert trim_malloc() is False
    assert limit_malloc_arenas() is False


@glibc_only
def test_collector_runs_the_trim_thread_and_stops_it(tmp_path: Path) -> None:
    config = CollectorConfig.model_validate(
        {
            "data_dir": str(tmp_path / "data"),
            "ingest": {"enabled": False},
            "detection": {"enabled": False},
            "metrics": {"enabled": False},
            "retention": {"enabled": False},
        }
    )
    collector = Collector(config)
    collector.start()
    try:
        assert any(t.name == "malloc-trim" and t.is_alive() for t in threading.enumerate())
    finally:
        collector.stop()
    assert not any(t.name == "malloc-trim" and t.is_alive() for t in threading.enumerate())
