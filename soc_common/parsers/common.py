"""Pieces every line parser shares: the options, the base event and the failure marking.

Parsers build events by hand (not through :func:`soc_common.ecs.new_event`) because they run in the
hot path of the collector and the agent, and because the caller, not the parser, knows the record's
identity and so sets ``event.id``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from soc_common.ecs import ECS_VERSION, Event, add_tag


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """How to read timestamps that lack a year or a zone, and what to use when a line has none.

    ``tz`` is the zone of zone-less timestamps (``None`` = this host's local zone, right for an
    agent reading its own files). ``default_year`` pins the year of RFC 3164 timestamps (offline
    hunting through old files); otherwise the year is inferred around ``now``. ``read_time`` is the
    ``@timestamp`` of a line without a time of its own (``None`` = the current time): the agent's
    file source passes a placeholder it recognises, so a re-read line can get its first read time.
    """

    default_year: int | None = None
    tz: tzinfo | None = None
    now: datetime | None = field(default=None, compare=False)
    read_time: str | None = field(default=None, compare=False)

    def current_time(self) -> datetime:
        return self.now if self.now is not None else datetime.now(UTC)


DEFAULT_OPTIONS = ParseOptions()


def iso_utc(ts: datetime) -> str:
    """ECS timestamp text of an aware datetime; an f-string, several times faster than strftime."""
    if ts.utcoffset():
        ts = ts.astimezone(UTC)
    return (
        f"{ts.year:04d}-{ts.month:02d}-{ts.day:02d}T{ts.hour:02d}:{ts.minute:02d}:{ts.second:02d}"
        f".{ts.microsecond // 1000:03d}Z"
    )


_now_cache: list[Any] = [0, ""]


def now_iso() -> str:
    """The current time as ECS text, recomputed at most once per millisecond."""
    ms = time.time_ns() // 1_000_000
    if _now_cache[0] != ms:
        _now_cache[0] = ms
        _now_cache[1] = iso_utc(datetime.fromtimestamp(ms / 1000, UTC))
    return str(_now_cache[1])


def base_event(line: str, dataset: str, timestamp: str | None = None) -> Event:
    """The fields every parsed event carries; ``@timestamp`` defaults to now (read time).

    Parsers pass ``opts.read_time`` as ``timestamp`` so a caller's read time replaces the clock.
    """
    return {
        "@timestamp": timestamp or now_iso(),
        "ecs": {"version": ECS_VERSION},
        "event": {"kind": "event", "dataset": dataset, "original": line},
    }


def mark_failure(event: Event, reason: str, tag: str) -> Event:
    """Record why a line could not be parsed; the line itself stays in ``event.original``."""
    event.setdefault("soc", {})["parse_error"] = reason
    add_tag(event, tag)
    if "message" not in event:
        event["message"] = event["event"].get("original", "")
    return event


def failed_event(line: str, dataset: str, reason: str, tag: str, timestamp: str | None = None) -> Event:
    return mark_failure(base_event(line, dataset, timestamp), reason, tag)


def to_utc_iso(ts: datetime, tz: tzinfo | None) -> str:
    """ECS timestamp of ``ts``; a naive ``ts`` is local time in ``tz`` (``None`` = host zone)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=tz) if tz is not None else ts.astimezone()
    return iso_utc(ts)


def decode_bytes(data: bytes, encoding: str = "utf-8") -> tuple[str, bool]:
    """Decode without ever failing: returns the text and whether bytes had to be replaced."""
    try:
        return data.decode(encoding), False
    except UnicodeDecodeError:
        return data.decode(encoding, errors="replace"), True
