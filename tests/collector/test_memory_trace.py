"""The opt-in allocation report (collector.memory_trace): off by default, names the site that grew."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.memory_trace import ENV, MemoryTrace

_KEPT: list[bytes] = []


def _grow() -> None:
    _KEPT.extend(b"x" * 1000 + bytes([i % 256]) for i in range(5000))


def test_off_unless_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    trace = MemoryTrace(tmp_path)
    assert trace.start() is False
    trace.stop()
    assert not trace.path.exists()


def test_the_report_names_the_site_that_grew(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "5")
    trace = MemoryTrace(tmp_path, interval=3600)
    assert trace.start() is True
    try:
        _grow()
    finally:
        trace.stop()  # writes the last report
        _KEPT.clear()
    report = trace.path.read_text()
    assert report.startswith("traced ")
    first_site = report.split("\n\n", 2)[1]
    assert "_grow" in first_site and "MiB in +" in first_site
