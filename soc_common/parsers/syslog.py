"""Syslog messages: RFC 5424, RFC 3164 (BSD) and the plain syslog-format lines of log files.

Parsing is hand slicing rather than one big regex: the collector pushes tens of thousands of lines a
second through here, and slicing makes each malformed part fail on its own (a bad structured-data
block still yields the header fields) instead of losing the whole line.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from soc_common.ecs import ECS_VERSION, Event
from soc_common.parsers.common import (
    DEFAULT_OPTIONS,
    ParseOptions,
    iso_utc,
    mark_failure,
    now_iso,
    to_utc_iso,
)

DATASET = "system.syslog"
FAILURE_TAG = "_syslogparsefailure"

SEVERITY_NAMES = ("emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug")
FACILITY_NAMES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
    "uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
    "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
)  # fmt: skip
MONTHS = {
    "Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6,
    "Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12,
}  # fmt: skip

_FUTURE_TOLERANCE = timedelta(days=7)
_NEXT_YEAR_WINDOW = timedelta(days=1)
_SD_ESCAPABLE = '"\\]'
#: an SD-ID runs up to the first space or "]"
_SD_NAME_END = re.compile(r"[^ \]]*").match


#: placeholder keeping ``@timestamp`` first in the event until the line's time is known
_NO_TIME_YET = "<no time yet>"


class _Malformed(ValueError):
    """A part of the message does not follow the format; the text says which."""


def parse_syslog(
    line: str, opts: ParseOptions = DEFAULT_OPTIONS, *, dataset: str = DATASET, require_pri: bool = False
) -> Event:
    """Parse one syslog message or syslog-format file line; never raises.

    A line that cannot be read keeps ``event.original`` and gets ``soc.parse_error`` and the tag
    ``_syslogparsefailure``.
    """
    if line.startswith("<"):
        common = _common_5424_event(line, opts, dataset) or _common_3164_event(line, opts, dataset)
        if common is not None:
            return common
    # the line's own time is the usual @timestamp: read the clock only when it has none
    # (the literal is common.base_event inlined: this runs for every received line)
    event: Event = {
        "@timestamp": _NO_TIME_YET,
        "ecs": {"version": ECS_VERSION},
        "event": {"kind": "event", "dataset": dataset, "original": line},
    }
    try:
        _parse_into(event, line, opts, require_pri)
    except _Malformed as exc:
        mark_failure(event, str(exc), FAILURE_TAG)
    except (ValueError, OverflowError) as exc:
        mark_failure(event, f"invalid value: {exc}", FAILURE_TAG)
    if event["@timestamp"] is _NO_TIME_YET:
        event["@timestamp"] = opts.read_time or now_iso()
    return event


def looks_like_syslog(line: str) -> bool:
    """Cheap guess used by format auto-detection."""
    if not line:
        return False
    first = line[0]
    if first == "<":
        return len(line) > 2 and line[1].isdecimal()
    if line[:3] in MONTHS and line[3:4] == " ":
        return True
    return len(line) > 20 and line[:4].isdecimal() and line[4] == "-" and line[10] == "T"


def _parse_into(event: Event, text: str, opts: ParseOptions, require_pri: bool) -> None:
    pos = 0
    syslog: dict[str, Any] = {}
    if text.startswith("<"):
        close = text.find(">", 1, 6)
        digits = text[1:close] if close > 0 else ""
        if not digits.isdecimal() or int(digits) > 191:
            raise _Malformed("invalid PRI part")
        _set_priority(syslog, int(digits))
        pos = close + 1
        if text.startswith("1 ", pos):
            event["log"] = {"syslog": syslog}
            _parse_5424(event, syslog, text, opts)
            return
    elif require_pri:
        raise _Malformed("missing PRI part")
    if syslog:
        event["log"] = {"syslog": syslog}
    _parse_3164(event, syslog, text, pos, opts, has_pri=bool(syslog))


#: the everyday RFC 3164 line, ``<PRI>Mmm dd hh:mm:ss host program[pid]: message``, in one match;
#: it only matches lines the general code below reads the same way (the differential test checks)
_COMMON_3164 = re.compile(
    r"<([0-9]{1,4})>((?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2}) +"
    r"([^ \[]*[^ \[:]) ([^\[: ]+)(?:\[([^\]]*)\])?: ?(.*)",
    re.DOTALL,
).match


def _common_3164_event(text: str, opts: ParseOptions, dataset: str) -> Event | None:
    """The event of a line in the common 3164 form, or None to send the line to the general code.

    Built in one literal with the general code's key order: each dict is allocated at its final
    size, which matters as much as the parsing once thousands of events wait in a batch.
    """
    found = _COMMON_3164(text)
    if found is None:
        return None
    digits, stamp_text, host, program, pid, message = found.groups()
    pri = int(digits)
    if pri > 191:
        return None
    # the prefix cache of _read_3164_timestamp, looked up with the text the match already cut out
    known = _PREFIX_CACHE.get((stamp_text, opts.tz, opts.default_year)) if opts.now is None else None
    if known is not None and known[0] > time.monotonic():
        stamp: str | None = known[1]
    else:
        try:
            stamp, _ = _read_3164_timestamp(text, len(digits) + 2, opts)
        except (ValueError, OverflowError):
            return None  # the general code reports it
    if stamp is None:
        return None
    facility, facility_name, severity, severity_name = _PRIORITIES[pri]
    syslog: dict[str, Any]
    process: dict[str, Any]
    if pid is None:
        process = {"name": program}
        syslog = {
            "priority": pri, "facility": {"code": facility, "name": facility_name},
            "severity": {"code": severity, "name": severity_name}, "hostname": host, "appname": program,
        }  # fmt: skip
    else:
        process = {"name": program, "pid": int(pid)} if pid.isdecimal() else {"name": program}
        syslog = {
            "priority": pri, "facility": {"code": facility, "name": facility_name},
            "severity": {"code": severity, "name": severity_name}, "hostname": host, "appname": program,
            "procid": pid,
        }  # fmt: skip
    return {
        "@timestamp": stamp,
        "ecs": {"version": ECS_VERSION},
        "event": {"kind": "event", "dataset": dataset, "original": text},
        "log": {"syslog": syslog},
        "host": {"hostname": host},
        "process": process,
        "message": message,
    }


def _common_5424_event(text: str, opts: ParseOptions, dataset: str) -> Event | None:
    """The event of an RFC 5424 line with every header field and no structured data, else None.

    Same fields and key order as the general code (:func:`_parse_5424`), built at final size.
    """
    close = text.find(">", 1, 6)
    if close < 0 or not text.startswith("1 ", close + 1):
        return None
    digits = text[1:close]
    if not digits.isdecimal() or int(digits) > 191:
        return None
    parts = text.split(" ", 7)
    if len(parts) != 8 or parts[6] != "-":
        return None
    stamp, host, app, procid, msgid = parts[1:6]
    if stamp == "-" or host == "-" or app == "-" or procid == "-":
        return None
    try:
        timestamp = _iso_text(stamp, opts.tz)
    except ValueError:
        return None  # the general code reports it
    message = parts[7]
    if message.startswith("\ufeff"):
        message = message[1:]
    pri = int(digits)
    facility, facility_name, severity, severity_name = _PRIORITIES[pri]
    syslog: dict[str, Any]
    if msgid == "-":
        syslog = {
            "priority": pri, "facility": {"code": facility, "name": facility_name},
            "severity": {"code": severity, "name": severity_name}, "version": 1, "hostname": host,
            "appname": app, "procid": procid,
        }  # fmt: skip
    else:
        syslog = {
            "priority": pri, "facility": {"code": facility, "name": facility_name},
            "severity": {"code": severity, "name": severity_name}, "version": 1, "hostname": host,
            "appname": app, "procid": procid, "msgid": msgid,
        }  # fmt: skip
    return {
        "@timestamp": timestamp,
        "ecs": {"version": ECS_VERSION},
        "event": {"kind": "event", "dataset": dataset, "original": text},
        "log": {"syslog": syslog},
        "host": {"hostname": host},
        "process": {"name": app, "pid": int(procid)} if procid.isdecimal() else {"name": app},
        "message": message,
    }


def _set_priority(syslog: dict[str, Any], pri: int) -> None:
    facility, facility_name, severity, severity_name = _PRIORITIES[pri]
    syslog["priority"] = pri
    syslog["facility"] = {"code": facility, "name": facility_name}
    syslog["severity"] = {"code": severity, "name": severity_name}


#: PRI 0..191 -> (facility, its name, severity, its name), decoded once
_PRIORITIES = [
    (pri // 8, FACILITY_NAMES[pri // 8], pri % 8, SEVERITY_NAMES[pri % 8]) for pri in range(len(FACILITY_NAMES) * 8)
]


# --- RFC 3164 and syslog-format file lines ---------------------------------------------------


def _parse_3164(
    event: Event, syslog: dict[str, Any], text: str, pos: int, opts: ParseOptions, *, has_pri: bool
) -> None:
    stamp, pos = _read_3164_timestamp(text, pos, opts)
    if stamp is None:
        if not has_pri:
            raise _Malformed("no syslog timestamp")
        # A PRI with no header at all: RFC 3164 says the rest is the message.
        event["message"] = text[pos:]
        return
    event["@timestamp"] = stamp
    while text.startswith(" ", pos):
        pos += 1
    end = text.find(" ", pos)
    first = text[pos:] if end < 0 else text[pos:end]
    if first and not first.endswith(":") and "[" not in first:
        # First token is the host, unless it is the whole rest of the line.
        if end < 0:
            event["message"] = first
            return
        event["host"] = {"hostname": first}
        syslog["hostname"] = first
        pos = end + 1
    _read_tag(event, syslog, text, pos)


def _read_3164_timestamp(text: str, pos: int, opts: ParseOptions) -> tuple[str | None, int]:
    month = MONTHS.get(text[pos : pos + 3])
    if month is not None:
        # Lines come in bursts within one second: "Mmm dd hh:mm:ss" without a fraction after it maps
        # to the same text for as long as the hour it was derived from is cached.
        if opts.now is None and text[pos + 15 : pos + 16] != ".":
            prefix_key = (text[pos : pos + 15], opts.tz, opts.default_year)
            known = _PREFIX_CACHE.get(prefix_key)
            if known is not None and known[0] > time.monotonic():
                return known[1], pos + 15
        # "Jan  5 10:00:01" (day space-padded) optionally "Jan  5 2024 10:00:01" (network gear)
        day_part = text[pos + 4 : pos + 6]
        clock_at = pos + 7
        year: int | None = None
        if text[clock_at + 4 : clock_at + 5] == " " and text[clock_at : clock_at + 4].isdecimal():
            year = int(text[clock_at : clock_at + 4])
            clock_at += 5
        clock = text[clock_at : clock_at + 8]
        if text[pos + 3] != " " or clock[2:3] != ":" or clock[5:6] != ":":
            raise _Malformed("invalid RFC 3164 timestamp")
        day = int(day_part)
        hour, minute, second = int(clock[0:2]), int(clock[3:5]), int(clock[6:8])
        end = clock_at + 8
        micro = 0
        if text[end : end + 1] == "." and text[end + 1 : end + 2].isdecimal():
            frac_end = end + 1
            while frac_end < len(text) and text[frac_end].isdecimal():
                frac_end += 1
            micro = int(text[end + 1 : frac_end][:6].ljust(6, "0"))
            end = frac_end
        stamp = _stamp_3164(month, day, hour, minute, second, micro, year, opts)
        if end == pos + 15 and opts.now is None:
            hour_entry = _HOUR_CACHE.get((month, day, hour, opts.default_year, opts.tz))
            if hour_entry is not None:
                if len(_PREFIX_CACHE) > 4096:
                    _PREFIX_CACHE.clear()
                _PREFIX_CACHE[(text[pos : pos + 15], opts.tz, opts.default_year)] = (hour_entry[0], stamp)
        return stamp, end
    if text[pos : pos + 4].isdecimal() and text[pos + 4 : pos + 5] == "-":
        end = text.find(" ", pos)
        token = text[pos:] if end < 0 else text[pos:end]
        try:
            return _iso_text(token, opts.tz), (len(text) if end < 0 else end)
        except ValueError:
            raise _Malformed("invalid ISO 8601 timestamp") from None
    return None, pos


_HOUR_CACHE: dict[tuple[Any, ...], tuple[float, datetime]] = {}
_HOUR_CACHE_TTL = 60.0
_SECOND_CACHE: dict[tuple[Any, ...], tuple[float, str]] = {}
#: (the 15 characters of a fraction-less "Mmm dd hh:mm:ss", tz, default year) -> (expiry, UTC text)
_PREFIX_CACHE: dict[tuple[Any, ...], tuple[float, str]] = {}


def _stamp_3164(
    month: int,
    day: int,
    hour: int,
    minute: int,
    second: int,
    micro: int,
    year: int | None,
    opts: ParseOptions,
) -> str:
    """UTC text of a year-less local timestamp; the hour's year and offset are cached briefly."""
    if minute > 59 or second > 60:
        raise _Malformed("invalid RFC 3164 time")
    pinned = year if year is not None else opts.default_year
    if opts.now is not None:
        base = _resolve_hour(month, day, hour, pinned, opts)
        return iso_utc(base + timedelta(minutes=minute, seconds=second, microseconds=micro))
    # Lines come in bursts within the same second: the finished text is cached as long as the
    # hour it was derived from (the year choice depends on "now", so neither is cached for ever).
    mono = time.monotonic()
    key = (month, day, hour, pinned, opts.tz)
    if not micro:
        cached = _SECOND_CACHE.get((key, minute, second))
        if cached is not None and cached[0] > mono:
            return cached[1]
    hit = _HOUR_CACHE.get(key)
    if hit is not None and hit[0] > mono:
        expires, base = hit
    else:
        base = _resolve_hour(month, day, hour, pinned, opts)
        if len(_HOUR_CACHE) > 4096:
            _HOUR_CACHE.clear()
        expires = mono + _HOUR_CACHE_TTL
        _HOUR_CACHE[key] = (expires, base)
    text = iso_utc(base + timedelta(minutes=minute, seconds=second, microseconds=micro))
    if not micro:
        if len(_SECOND_CACHE) > 4096:
            _SECOND_CACHE.clear()
        _SECOND_CACHE[(key, minute, second)] = (expires, text)
    return text


def _resolve_hour(month: int, day: int, hour: int, pinned: int | None, opts: ParseOptions) -> datetime:
    """Start of that local hour in UTC; without a year, the year nearest before now (or pinned)."""
    if pinned is not None:
        return _localize(datetime(pinned, month, day, hour), opts).astimezone(UTC)
    now = opts.current_time()
    local_now = now.astimezone(opts.tz) if opts.tz is not None else now.astimezone()
    stamps = {}
    for cand in (local_now.year, local_now.year - 1, local_now.year + 1):
        try:
            stamps[cand] = _localize(datetime(cand, month, day, hour), opts)
        except ValueError:  # 29 February in a common year
            continue
    this_year = stamps.get(local_now.year)
    next_year = stamps.get(local_now.year + 1)
    chosen: datetime | None
    if next_year is not None and next_year - now <= _NEXT_YEAR_WINDOW:
        chosen = next_year  # a sender whose clock is a little ahead across New Year
    elif this_year is not None and this_year - now <= _FUTURE_TOLERANCE:
        chosen = this_year
    else:
        chosen = stamps.get(local_now.year - 1) or this_year or next_year
    if chosen is None:
        raise _Malformed("invalid RFC 3164 date")
    return chosen.astimezone(UTC)


def _localize(naive: datetime, opts: ParseOptions) -> datetime:
    return naive.replace(tzinfo=opts.tz) if opts.tz is not None else naive.astimezone()


#: the program name runs up to the first "[", ":" or space
_PROGRAM_END = re.compile(r"[^\[: ]*").match


def _read_tag(event: Event, syslog: dict[str, Any], text: str, pos: int) -> None:
    """``program[pid]: message``; a line without a tag is all message."""
    n = len(text)
    found = _PROGRAM_END(text, pos)  # matches the empty string too, so never None in practice
    i = found.end() if found is not None else pos
    program = text[pos:i]
    pid: str | None = None
    if i < n and text[i] == "[":
        close = text.find("]", i + 1)
        if close < 0:
            event["message"] = text[pos:]
            return
        pid = text[i + 1 : close]
        i = close + 1
    if not program or i >= n or text[i] != ":":
        event["message"] = text[pos:]
        return
    i += 1
    if i < n and text[i] == " ":
        i += 1
    process: dict[str, Any] = {"name": program}
    syslog["appname"] = program
    if pid is not None:
        syslog["procid"] = pid
        if pid.isdecimal():
            process["pid"] = int(pid)
    event["process"] = process
    event["message"] = text[i:]


# --- RFC 5424 -----------------------------------------------------------------------------------


def _parse_5424(event: Event, syslog: dict[str, Any], text: str, opts: ParseOptions) -> None:
    """``text`` is a whole RFC 5424 line: "<PRI>1 " (already read), then the header fields."""
    syslog["version"] = 1
    # "<PRI>1 " has one space, at its end: splitting the whole line saves a copy of it, and
    # one split more than the header needs hands over the message of a "-" structured data as is
    parts = text.split(" ", 7)
    if len(parts) < 6:
        raise _Malformed("RFC 5424 header is incomplete")
    stamp, hostname, appname, procid, msgid = parts[1:6]
    if stamp != "-":
        try:
            event["@timestamp"] = _iso_text(stamp, opts.tz)
        except ValueError:
            raise _Malformed("invalid RFC 5424 timestamp") from None
    if hostname != "-":
        event["host"] = {"hostname": hostname}
        syslog["hostname"] = hostname
    process: dict[str, Any] = {}
    if appname != "-":
        syslog["appname"] = appname
        process["name"] = appname
    if procid != "-":
        syslog["procid"] = procid
        if procid.isdecimal():
            process["pid"] = int(procid)
    if process:
        event["process"] = process
    if msgid != "-":
        syslog["msgid"] = msgid
    if len(parts) == 8 and parts[6] == "-":
        message = parts[7]
    else:
        message = _after_structured_data(event, syslog, " ".join(parts[6:]))
    if message.startswith("\ufeff"):
        message = message[1:]
    event["message"] = message


def _after_structured_data(event: Event, syslog: dict[str, Any], rest: str) -> str:
    """The message after the structured data, which goes to ``log.syslog.structured_data``."""
    if rest.startswith("-"):
        message = rest[2:] if rest.startswith("- ") else rest[1:]
    elif rest.startswith("["):
        try:
            sd, end = parse_structured_data(rest, 0)
        except _Malformed as exc:
            event["message"] = rest
            raise _Malformed(f"invalid structured data: {exc}") from None
        syslog["structured_data"] = sd
        message = rest[end + 1 :] if rest.startswith(" ", end) else rest[end:]
    else:
        message = rest
    return message


def _iso_text(stamp: str, tz: tzinfo | None) -> str:
    """ECS text of an ISO 8601 timestamp; raises ValueError. Cached: senders repeat the same second."""
    key = (stamp, tz)
    cached = _ISO_CACHE.get(key)
    if cached is None:
        cached = to_utc_iso(datetime.fromisoformat(stamp), tz)
        if len(_ISO_CACHE) >= _ISO_CACHE_SIZE:
            _ISO_CACHE.clear()
        _ISO_CACHE[key] = cached
    return cached


_ISO_CACHE: dict[tuple[str, tzinfo | None], str] = {}
_ISO_CACHE_SIZE = 4096


def parse_structured_data(text: str, pos: int) -> tuple[dict[str, dict[str, str]], int]:
    """Parse ``[id k="v" ...][id2 ...]`` from ``pos``; returns the elements and the end position."""
    elements: dict[str, dict[str, str]] = {}
    n = len(text)
    while pos < n and text[pos] == "[":
        start = pos + 1
        found = _SD_NAME_END(text, start)  # matches the empty string too, so never None in practice
        pos = found.end() if found is not None else start
        sd_id = text[start:pos]
        if not sd_id:
            raise _Malformed("empty SD-ID")
        params: dict[str, str] = {}
        while pos < n and text[pos] == " ":
            pos += 1
            eq = text.find("=", pos)
            if eq < 0 or text[eq + 1 : eq + 2] != '"':
                raise _Malformed(f"bad parameter in [{sd_id}]")
            name = text[pos:eq]
            pos = eq + 2
            close = text.find('"', pos)
            if close >= 0 and "\\" not in text[pos:close]:
                params[name] = text[pos:close]  # no escape before the closing quote: a plain slice
                pos = close + 1
                continue
            value: list[str] = []
            while True:
                if pos >= n:
                    raise _Malformed(f"unterminated value in [{sd_id}]")
                ch = text[pos]
                if ch == "\\" and pos + 1 < n and text[pos + 1] in _SD_ESCAPABLE:
                    value.append(text[pos + 1])
                    pos += 2
                elif ch == '"':
                    pos += 1
                    break
                else:
                    value.append(ch)
                    pos += 1
            params[name] = "".join(value)
        if pos >= n or text[pos] != "]":
            raise _Malformed(f"unterminated element [{sd_id}]")
        pos += 1
        elements[sd_id] = params
    return elements, pos
