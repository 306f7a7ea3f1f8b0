"""The narrow interface the live source needs from the Windows Event Log, and its pywin32 implementation.

The source only needs: subscribe to a channel from a bookmark, pull rendered XML in batches, and get
a bookmark for the position after the last pulled event. Keeping it this small is what lets the
source's bookmarking be tested on Linux with recorded XML; :class:`Win32EventLogApi` is the only
part that touches the Windows API and is imported only on Windows.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

StartAt = Literal["oldest", "now"]


@dataclass
class EventBatch:
    """Rendered events and the bookmark for the position just after the last of them."""

    xml: list[str] = field(default_factory=list)
    bookmark: str | None = None


class EventLogSubscription(Protocol):
    def pull(self, max_events: int, timeout: float) -> EventBatch:
        """Up to ``max_events`` events, waiting at most ``timeout`` seconds for the first one."""
        ...

    def close(self) -> None: ...


class EventLogApi(Protocol):
    def subscribe(
        self, channel: str, query: str | None, bookmark: str | None, start_at: StartAt
    ) -> EventLogSubscription:
        """Start reading ``channel`` after ``bookmark`` (or from ``start_at`` without one)."""
        ...


class EventLogUnavailable(RuntimeError):
    """The Windows Event Log API cannot be used here (not Windows, or pywin32 missing)."""


class _Win32Subscription:
    """A pull subscription: EvtSubscribe with a signal event, EvtNext, EvtRender, EvtUpdateBookmark."""

    _ERROR_NO_MORE_ITEMS = 259

    def __init__(self, channel: str, query: str | None, bookmark: str | None, start_at: StartAt) -> None:
        import win32event
        import win32evtlog

        self._evt = win32evtlog
        self._event = win32event
        self._signal = win32event.CreateEvent(None, True, True, None)
        if bookmark:
            self._bookmark = win32evtlog.EvtCreateBookmark(bookmark)
            flags = win32evtlog.EvtSubscribeStartAfterBookmark
            self._handle = win32evtlog.EvtSubscribe(
                channel, flags, SignalEvent=self._signal, Query=query or "*", Bookmark=self._bookmark
            )
        else:
            self._bookmark = win32evtlog.EvtCreateBookmark(None)
            flags = (
                win32evtlog.EvtSubscribeStartAtOldestRecord
                if start_at == "oldest"
                else win32evtlog.EvtSubscribeToFutureEvents
            )
            self._handle = win32evtlog.EvtSubscribe(channel, flags, SignalEvent=self._signal, Query=query or "*")

    def pull(self, max_events: int, timeout: float) -> EventBatch:
        import pywintypes

        self._event.WaitForSingleObject(self._signal, int(timeout * 1000))
        try:
            handles: Any = self._evt.EvtNext(self._handle, max_events, 0, 0)
        except pywintypes.error as exc:
            if exc.winerror == self._ERROR_NO_MORE_ITEMS:
                handles = ()
            else:
                raise
        if not handles:
            self._event.ResetEvent(self._signal)
            return EventBatch()
        xml = [self._evt.EvtRender(h, self._evt.EvtRenderEventXml) for h in handles]
        self._evt.EvtUpdateBookmark(self._bookmark, handles[-1])
        return EventBatch(xml, self._evt.EvtRender(self._bookmark, self._evt.EvtRenderBookmark))

    def close(self) -> None:
        self._handle = None  # pywin32 closes EVT_HANDLEs when they are collected


class Win32EventLogApi:
    """The real Event Log, through pywin32's ``win32evtlog``."""

    def __init__(self) -> None:
        if sys.platform != "win32":
            raise EventLogUnavailable("the Windows Event Log exists only on Windows")
        try:
            import win32evtlog  # noqa: F401
        except ImportError as exc:
            raise EventLogUnavailable("pywin32 is not installed (pip install soc-platform[windows])") from exc

    def subscribe(
        self, channel: str, query: str | None, bookmark: str | None, start_at: StartAt
    ) -> EventLogSubscription:
        return _Win32Subscription(channel, query, bookmark, start_at)
