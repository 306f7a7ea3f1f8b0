"""The live Windows Event Log source: channels -> ECS events, resuming exactly from bookmarks.

Each channel has a pull subscription; rendered XML goes through :func:`xml_to_record` and the same
normaliser as ``.evtx`` files. A channel's bookmark is persisted only after ``emit`` returned, so a
crash re-reads at most one batch (duplicates by ``event.id``) and never skips one. A channel that
cannot be opened (Sysmon not installed, no right to read Security) is retried and reported in
``status()`` without stopping the others.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from agent.sources.base import Emit, Source
from agent.windows.bookmarks import BookmarkStore
from agent.windows.eventlog_api import EventLogApi, EventLogSubscription, StartAt
from agent.windows.normalize import normalize_event, unreadable_event
from agent.windows.xml_record import XmlRecordError, xml_to_record
from soc_common.config import Section, data_dir_default
from soc_common.ecs import Event

DEFAULT_CHANNELS = [
    "Security",
    "System",
    "Application",
    "Microsoft-Windows-Sysmon/Operational",
    "Microsoft-Windows-PowerShell/Operational",
    "Microsoft-Windows-Windows Defender/Operational",
]


class WindowsEventLogSettings(Section):
    """``[[sources]] type = "windows_eventlog"``."""

    channels: list[str] = Field(default_factory=lambda: list(DEFAULT_CHANNELS), min_length=1)
    #: optional XPath filter per channel, e.g. ``{"Security" = "*[System[(EventID=4624 or EventID=4625)]]"}``
    queries: dict[str, str] = Field(default_factory=dict)
    batch_size: int = Field(default=500, ge=1, le=10_000)
    #: how long to sleep when no channel had anything new (seconds)
    poll_interval: float = Field(default=1.0, gt=0, le=60)
    #: where a channel never read before starts: its oldest record or new events only
    start_at: StartAt = "oldest"
    #: seconds before re-opening a channel that failed
    retry_interval: float = Field(default=30.0, gt=0)
    #: bookmark file; default ``<agent data dir>/bookmarks/<source name>.json``
    bookmark_path: Path | None = None

    @model_validator(mode="after")
    def _queries_name_channels(self) -> WindowsEventLogSettings:
        unknown = sorted(set(self.queries) - set(self.channels))
        if unknown:
            raise ValueError(f"queries for channels not in 'channels': {', '.join(unknown)}")
        return self


class _Channel:
    """Per-channel state: the open subscription, counters, last error and when to retry."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.subscription: EventLogSubscription | None = None
        self.events = 0
        self.unreadable = 0
        self.error: str | None = None
        self.retry_at = 0.0


class WindowsEventLogSource(Source):
    type = "windows_eventlog"
    settings_model = WindowsEventLogSettings

    def __init__(
        self,
        name: str,
        settings: WindowsEventLogSettings | None = None,
        *,
        api: EventLogApi | None = None,
        data_dir: Path | None = None,
    ) -> None:
        super().__init__(name)
        self.settings = settings or WindowsEventLogSettings()
        self._api = api
        path = self.settings.bookmark_path or (data_dir or data_dir_default() / "agent") / "bookmarks" / (
            f"{name}.json"
        )
        self.bookmarks = BookmarkStore(path)
        self._channels = [_Channel(c) for c in self.settings.channels]

    # -- running -------------------------------------------------------------------------------

    def run(self, emit: Emit, stop: threading.Event) -> None:
        if self.bookmarks.load_error:
            self._error(self.bookmarks.load_error)
        api = self._api
        if api is None:
            from agent.windows.eventlog_api import EventLogUnavailable, Win32EventLogApi

            try:
                api = Win32EventLogApi()
            except EventLogUnavailable as exc:
                self._error(str(exc))
                return
        try:
            while not stop.is_set():
                busy = False
                for channel in self._channels:
                    if stop.is_set():
                        break
                    busy |= self._poll(api, channel, emit)
                if not busy:
                    stop.wait(self.settings.poll_interval)
        finally:
            for channel in self._channels:
                self._close(channel)

    def _poll(self, api: EventLogApi, channel: _Channel, emit: Emit) -> bool:
        """Read one batch of ``channel``; True when it had events (so there may be more)."""
        if channel.subscription is None:
            if time.monotonic() < channel.retry_at:
                return False
            try:
                channel.subscription = api.subscribe(
                    channel.name,
                    self.settings.queries.get(channel.name),
                    self.bookmarks.get(channel.name),
                    self.settings.start_at,
                )
                channel.error = None
            except Exception as exc:
                self._fail(channel, f"cannot open channel {channel.name!r}: {exc}")
                return False
        try:
            batch = channel.subscription.pull(self.settings.batch_size, 0)
        except Exception as exc:
            self._fail(channel, f"reading {channel.name!r} failed: {exc}")
            return False
        if not batch.xml:
            return False
        events = [self._event(channel, xml) for xml in batch.xml]
        try:
            emit(events)
        except Exception as exc:
            # Nothing was bookmarked: re-subscribing from the stored bookmark re-reads this batch.
            self._fail(channel, f"emit failed, will re-read from the last bookmark: {exc}")
            return False
        channel.events += len(events)
        if batch.bookmark:
            try:
                self.bookmarks.set(channel.name, batch.bookmark)
            except OSError as exc:
                self._error(f"cannot save bookmark for {channel.name!r}: {exc}")
        return True

    def _event(self, channel: _Channel, xml: str) -> Event:
        try:
            record = xml_to_record(xml)
        except XmlRecordError as exc:
            channel.unreadable += 1
            self._error(f"{channel.name}: unreadable event XML: {exc}")
            return unreadable_event(xml, str(exc))
        return normalize_event(record, original=xml)

    def _fail(self, channel: _Channel, message: str) -> None:
        channel.error = message
        channel.retry_at = time.monotonic() + self.settings.retry_interval
        self._close(channel)
        self._error(message)

    def _error(self, message: str) -> None:
        self.errors += 1
        self.last_error = message

    @staticmethod
    def _close(channel: _Channel) -> None:
        if channel.subscription is not None:
            # closing a broken handle must not mask the original error
            with contextlib.suppress(Exception):
                channel.subscription.close()
            channel.subscription = None

    # -- reporting -----------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        status = super().status()
        status["channels"] = {
            c.name: {
                "open": c.subscription is not None,
                "events": c.events,
                "unreadable": c.unreadable,
                "bookmarked": self.bookmarks.get(c.name) is not None,
                "error": c.error,
            }
            for c in self._channels
        }
        return status
