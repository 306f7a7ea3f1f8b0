"""Log line parsers shared by the agent, the collector and offline hunting.

``parse_line(line, fmt)`` turns one text record into an ECS event. Every event has ``event.original``
(the line), ``event.dataset`` and ``@timestamp``; a line no parser understands is kept, tagged
``_parsefailure``, never dropped. The caller sets ``event.id`` because only it knows the record's
identity (file and offset, journal cursor, ...).

Formats live in a registry so a new one plugs in with :func:`register_format`; ``auto`` asks each
format's cheap ``sniff`` in registration order and parses with the first that claims the line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo

from soc_common.ecs import Event, add_tag
from soc_common.parsers.access import looks_like_access, parse_access
from soc_common.parsers.authlog import enrich_auth, parse_authlog
from soc_common.parsers.common import ParseOptions, base_event, decode_bytes, mark_failure
from soc_common.parsers.jsonl import looks_like_json, parse_json_line
from soc_common.parsers.syslog import looks_like_syslog, parse_syslog

LineParser = Callable[[str, ParseOptions], Event]
Sniffer = Callable[[str], bool]

FAILURE_TAG = "_parsefailure"
INVALID_UTF8_TAG = "_invalid_utf8"
RAW_DATASET = "raw"


@dataclass(frozen=True, slots=True)
class LineFormat:
    name: str
    parse: LineParser
    sniff: Sniffer | None = None


_FORMATS: dict[str, LineFormat] = {}


def register_format(name: str, parse: LineParser, sniff: Sniffer | None = None) -> None:
    """Add (or replace) a format; with ``sniff`` it also takes part in ``auto`` detection."""
    if name == "auto":
        raise ValueError("'auto' is reserved")
    _FORMATS[name] = LineFormat(name, parse, sniff)


def formats() -> list[str]:
    """Names accepted by :func:`parse_line` (besides ``auto``)."""
    return list(_FORMATS)


def parse_line(
    line: str | bytes,
    fmt: str = "auto",
    *,
    default_year: int | None = None,
    tz: tzinfo | None = None,
) -> Event:
    """Parse one record. ``fmt``: ``auto`` or a registered name (syslog, authlog, access, json, raw ...).

    ``tz`` is the zone of timestamps that carry none (``None``: this host's zone); ``default_year``
    pins the year of RFC 3164 timestamps. Bytes are decoded as UTF-8; invalid sequences become
    U+FFFD and the event is tagged ``_invalid_utf8``. Never raises on any input.
    """
    return parse_with_options(line, fmt, ParseOptions(default_year=default_year, tz=tz))


def parse_with_options(line: str | bytes, fmt: str, opts: ParseOptions) -> Event:
    """:func:`parse_line` with prepared options (sources build them once, not per line)."""
    invalid_utf8 = False
    if isinstance(line, bytes | bytearray):
        line, invalid_utf8 = decode_bytes(bytes(line))
    if fmt == "auto":
        event = _parse_auto(line, opts)
    else:
        found = _FORMATS.get(fmt)
        if found is None:
            raise ValueError(f"unknown log format {fmt!r}; known: auto, {', '.join(_FORMATS)}")
        try:
            event = found.parse(line, opts)
        except Exception as exc:  # a plug-in's bug must not lose the line
            failed = base_event(line, RAW_DATASET, opts.read_time)
            event = mark_failure(failed, f"{fmt} parser error: {exc!r}", FAILURE_TAG)
    if invalid_utf8:
        add_tag(event, INVALID_UTF8_TAG)
    return event


def _parse_auto(line: str, opts: ParseOptions) -> Event:
    for candidate in _FORMATS.values():
        if candidate.sniff is None:
            continue
        try:
            if not candidate.sniff(line):
                continue
            event = candidate.parse(line, opts)
        except Exception as exc:
            failed = base_event(line, RAW_DATASET, opts.read_time)
            return mark_failure(failed, f"{candidate.name} parser error: {exc!r}", FAILURE_TAG)
        if "soc" in event and "parse_error" in event["soc"]:
            add_tag(event, FAILURE_TAG)
        return event
    return mark_failure(base_event(line, RAW_DATASET, opts.read_time), "no known log format matched", FAILURE_TAG)


def _parse_raw(line: str, opts: ParseOptions) -> Event:
    event = base_event(line, RAW_DATASET, opts.read_time)
    event["message"] = line
    return event


def _parse_syslog(line: str, opts: ParseOptions) -> Event:
    """A syslog line; one from an auth program (sshd, sudo ...) that is understood becomes ``system.auth``."""
    event = parse_syslog(line, opts)
    enrich_auth(event)
    return event


def _parse_nginx(line: str, opts: ParseOptions) -> Event:
    return parse_access(line, opts, dataset="nginx.access")


def _parse_apache(line: str, opts: ParseOptions) -> Event:
    return parse_access(line, opts, dataset="apache.access")


# Order matters for ``auto``: cheapest and most specific sniffers first.
register_format("json", parse_json_line, looks_like_json)
register_format("syslog", _parse_syslog, looks_like_syslog)
register_format("authlog", parse_authlog)
register_format("access", _parse_nginx, looks_like_access)
register_format("nginx", _parse_nginx)
register_format("apache", _parse_apache)
register_format("raw", _parse_raw)

__all__ = [
    "FAILURE_TAG",
    "INVALID_UTF8_TAG",
    "LineFormat",
    "ParseOptions",
    "enrich_auth",
    "formats",
    "parse_line",
    "parse_with_options",
    "register_format",
]
