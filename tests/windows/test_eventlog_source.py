"""The live source's bookmarking: resume exactly, no loss, no duplicates.

The Windows Event Log API cannot run here, so ``FakeEventLogApi`` (the only mock) serves the XML of
real sample records, with bookmarks that are the record position, the way EvtRender(bookmark) is.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from evtx import PyEvtxParser
from pydantic import ValidationError

from agent.windows.eventlog import WindowsEventLogSettings, WindowsEventLogSource
from agent.windows.eventlog_api import EventBatch, StartAt
from soc_common.ecs import Event


class FakeSubscription:
    def __init__(self, records: list[str], start: int, api: FakeEventLogApi) -> None:
        self.records, self.position, self.api = records, start, api

    def pull(self, max_events: int, timeout: float) -> EventBatch:
        if self.api.fail_reads:
            self.api.fail_reads -= 1
            raise OSError("RPC server unavailable")
        batch = self.records[self.position : self.position + max_events]
        if not batch:
            return EventBatch()
        self.position += len(batch)
        return EventBatch(batch, f"<BookmarkList><Bookmark Position='{self.position}'/></BookmarkList>")

    def close(self) -> None:
        self.api.closed += 1


class FakeEventLogApi:
    def __init__(self, channels: dict[str, list[str]]) -> None:
        self.channels = channels
        self.fail_reads = 0
        self.closed = 0
        self.subscribed: list[tuple[str, str | None, str | None]] = []

    def subscribe(self, channel: str, query: str | None, bookmark: str | None, start_at: StartAt) -> FakeSubscription:
        self.subscribed.append((channel, query, bookmark))
        if channel not in self.channels:
            raise OSError(f"The specified channel could not be found: {channel}")
        records = self.channels[channel]
        if bookmark:
            start = int(bookmark.split("Position='")[1].split("'")[0])
        else:
            start = 0 if start_at == "oldest" else len(records)
        return FakeSubscription(records, start, self)


def xml_records(path: Path) -> list[str]:
    records: list[Any] = list(PyEvtxParser(str(path)).records())
    return [r["data"] for r in records]


class Collector:
    """An ``emit`` that stores events and can be told to fail, or to stop the source, after N calls."""

    def __init__(self, stop: threading.Event, stop_after: int | None = None, fail_on: set[int] | None = None):
        self.events: list[Event] = []
        self.calls = 0
        self.stop, self.stop_after, self.fail_on = stop, stop_after, fail_on or set()

    def __call__(self, batch: Sequence[Event]) -> None:
        self.calls += 1
        if self.calls in self.fail_on:
            raise RuntimeError("spool unavailable")
        self.events.extend(batch)
        if self.stop_after is not None and self.calls >= self.stop_after:
            self.stop.set()


def run_until_idle(source: WindowsEventLogSource, emit: Collector, stop: threading.Event) -> None:
    """Run the source in its thread until it stops itself or nothing new arrived for 0.5 s."""
    thread = threading.Thread(target=source.run, args=(emit, stop))
    thread.start()
    deadline = time.monotonic() + 20
    seen, quiet_since = -1, time.monotonic()
    while thread.is_alive() and not stop.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
        if emit.calls != seen:
            seen, quiet_since = emit.calls, time.monotonic()
        elif time.monotonic() - quiet_since > 0.5:
            break
    stop.set()
    thread.join(timeout=5)
    assert not thread.is_alive()


@pytest.fixture()
def channels(samples: Path) -> dict[str, list[str]]:
    return {
        "Security": xml_records(samples / "Command and Control" / "DE_RDP_Tunnel_5156.evtx"),
        "System": xml_records(samples / "Lateral Movement" / "LM_Remote_Service02_7045.evtx"),
        "Microsoft-Windows-Sysmon/Operational": xml_records(
            samples / "AutomatedTestingTools" / "PanacheSysmon_vs_AtomicRedTeam01.evtx"
        ),
    }


def settings_for(tmp_path: Path, channels: list[str], **extra: Any) -> WindowsEventLogSettings:
    return WindowsEventLogSettings(
        channels=channels, batch_size=25, poll_interval=0.05, bookmark_path=tmp_path / "bm.json", **extra
    )


def test_reads_everything_once_and_resumes_exactly(tmp_path: Path, channels: dict[str, list[str]]) -> None:
    total = sum(len(v) for v in channels.values())
    settings = settings_for(tmp_path, list(channels))
    api = FakeEventLogApi(channels)

    # first run stops part-way through (like a service stop or crash after a spooled batch)
    stop = threading.Event()
    first = Collector(stop, stop_after=5)
    run_until_idle(WindowsEventLogSource("winlog", settings, api=api), first, stop)
    assert 0 < len(first.events) < total

    # second run: a new source object, same bookmark file
    stop = threading.Event()
    second = Collector(stop)
    source = WindowsEventLogSource("winlog", settings, api=api)
    run_until_idle(source, second, stop)

    ids = [e["event"]["id"] for e in first.events + second.events]
    assert len(ids) == total == len(set(ids))  # no loss, no duplicates
    status = source.status()["channels"]
    assert all(status[c]["bookmarked"] for c in channels)
    assert source.errors == 0
    # the live path's events are the normaliser's, with the rendered XML as original
    rendered = {xml for records in channels.values() for xml in records}
    assert all(e["event"]["original"] in rendered for e in second.events)
    datasets = {e["event"]["dataset"] for e in first.events + second.events}
    assert datasets == {"windows.security", "windows.system", "windows.sysmon"}


def test_failed_emit_is_not_bookmarked_and_is_re_read(tmp_path: Path, channels: dict[str, list[str]]) -> None:
    only = {"System": channels["System"], "Security": channels["Security"][:60]}
    settings = settings_for(tmp_path, list(only), retry_interval=0.01)
    stop = threading.Event()
    emit = Collector(stop, fail_on={2})
    source = WindowsEventLogSource("winlog", settings, api=FakeEventLogApi(only))
    run_until_idle(source, emit, stop)
    ids = [e["event"]["id"] for e in emit.events]
    assert len(ids) == len(set(ids)) == len(only["System"]) + len(only["Security"])
    assert source.errors == 1 and "emit failed" in (source.last_error or "")


def test_read_errors_and_missing_channels_are_reported_and_retried(
    tmp_path: Path, channels: dict[str, list[str]]
) -> None:
    settings = settings_for(
        tmp_path,
        ["Security", "Microsoft-Windows-Windows Defender/Operational"],
        retry_interval=0.01,
        queries={"Security": "*[System[(EventID=4624)]]"},
    )
    api = FakeEventLogApi({"Security": channels["Security"]})
    api.fail_reads = 2
    stop = threading.Event()
    emit = Collector(stop)
    source = WindowsEventLogSource("winlog", settings, api=api)
    run_until_idle(source, emit, stop)
    assert len({e["event"]["id"] for e in emit.events}) == len(channels["Security"])
    status = source.status()["channels"]
    assert "could not be found" in status["Microsoft-Windows-Windows Defender/Operational"]["error"]
    assert status["Security"]["error"] is None and status["Security"]["events"] == len(channels["Security"])
    assert ("Security", "*[System[(EventID=4624)]]", None) in api.subscribed
    assert source.errors >= 3


def test_unreadable_xml_is_kept_and_counted(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, ["Application"])
    api = FakeEventLogApi({"Application": ["<Event><System>broken", "plain text"]})
    stop = threading.Event()
    emit = Collector(stop)
    source = WindowsEventLogSource("winlog", settings, api=api)
    run_until_idle(source, emit, stop)
    assert [e["event"]["original"] for e in emit.events] == ["<Event><System>broken", "plain text"]
    assert all("parse_error" in e["soc"] for e in emit.events)
    assert source.status()["channels"]["Application"]["unreadable"] == 2


def test_start_at_now_skips_history_and_corrupt_bookmark_file_is_reported(
    tmp_path: Path, channels: dict[str, list[str]]
) -> None:
    (tmp_path / "bm.json").write_text("{not json", encoding="utf-8")
    settings = settings_for(tmp_path, ["System"], start_at="now")
    stop = threading.Event()
    emit = Collector(stop)
    source = WindowsEventLogSource("winlog", settings, api=FakeEventLogApi({"System": channels["System"]}))
    run_until_idle(source, emit, stop)
    assert emit.events == []
    assert "unreadable bookmarks" in (source.last_error or "")


def test_settings_validation() -> None:
    assert WindowsEventLogSettings().channels[0] == "Security"
    with pytest.raises(ValidationError, match="queries for channels"):
        WindowsEventLogSettings(channels=["System"], queries={"Security": "*"})
    with pytest.raises(ValidationError):
        WindowsEventLogSettings(batch_size=0)
    with pytest.raises(ValidationError):
        WindowsEventLogSettings(chanels=["typo"])  # type: ignore[call-arg]


def test_without_windows_the_source_reports_and_returns(tmp_path: Path) -> None:
    source = WindowsEventLogSource("winlog", settings_for(tmp_path, ["System"]))
    stop = threading.Event()
    source.run(Collector(stop), stop)  # returns at once: there is no Event Log on this platform
    assert "only on Windows" in (source.last_error or "") or "pywin32" in (source.last_error or "")


def test_service_helpers_refuse_off_windows() -> None:
    from agent.windows import service

    with pytest.raises(service.ServiceError):
        service.install_service()
    with pytest.raises(service.ServiceError):
        service.uninstall_service()
