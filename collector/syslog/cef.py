"""ArcSight Common Event Format (CEF) -> ECS.

``CEF:Version|Device Vendor|Device Product|Device Version|Signature ID|Name|Severity|Extension``.
Header fields escape ``|`` and ``\\``; extension values escape ``=``, ``\\`` and newlines, and a value
runs until the next unescaped `` key=``. Every extension key is kept verbatim under
``cef.extensions``; the well-known ones are also mapped to ECS when their value is valid (an
address that is not an IP never reaches ``source.ip``, where it would make the store reject the
whole event).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, tzinfo
from typing import Any

from collector.syslog.fields import FieldPath, apply_mapping, put_path, split_paths, valid_ip
from soc_common.ecs import Event
from soc_common.parsers.common import iso_utc

DATASET = "cef"
_KEY = re.compile(r"(?:^|(?<=\s))([A-Za-z0-9_.\[\]-]+)=")
_EXT_UNESCAPE = {"\\": "\\", "=": "=", "n": "\n", "r": "\r", "|": "|"}
_SEVERITY_WORDS = {"unknown": 0, "low": 3, "medium": 5, "high": 8, "very-high": 10, "very high": 10}

_IP_KEYS = {"src": "source.ip", "dst": "destination.ip", "dvc": "observer.ip",
            "sourceTranslatedAddress": "source.nat.ip",
            "destinationTranslatedAddress": "destination.nat.ip"}  # fmt: skip
_PORT_KEYS = {"spt": "source.port", "dpt": "destination.port", "sourceTranslatedPort": "source.nat.port",
              "destinationTranslatedPort": "destination.nat.port"}  # fmt: skip
_INT_KEYS = {"in": "source.bytes", "out": "destination.bytes", "cnt": "event.count"}
_TEXT_KEYS = {
    "suser": "source.user.name", "duser": "destination.user.name", "act": "event.action",
    "shost": "source.domain", "dhost": "destination.domain", "smac": "source.mac", "dmac": "destination.mac",
    "request": "url.original", "requestMethod": "http.request.method", "app": "network.protocol",
    "dvchost": "observer.hostname", "outcome": "event.outcome", "fname": "file.name", "filePath": "file.path",
    "sproc": "process.name", "cs1": "cef.cs1", "reason": "event.reason", "deviceExternalId": "observer.serial_number",
    "requestClientApplication": "user_agent.original", "msg": "message",
}  # fmt: skip


class CefError(ValueError):
    pass


def is_cef(message: str) -> bool:
    return message.startswith("CEF:")


def split_header(text: str) -> tuple[list[str], str]:
    """The 7 header fields after ``CEF:`` and the extension text; raises CefError when short."""
    parts = text[4:].split("|", 7)
    if len(parts) == 8 and "\\" not in text[: len(text) - len(parts[7])]:
        return parts[:7], parts[7]  # no escape in the header: a plain split reads it the same
    return _split_escaped_header(text)


def _split_escaped_header(text: str) -> tuple[list[str], str]:
    fields: list[str] = []
    current: list[str] = []
    i, n = 4, len(text)
    while i < n and len(fields) < 7:
        ch = text[i]
        if ch == "\\" and i + 1 < n and text[i + 1] in "|\\":
            current.append(text[i + 1])
            i += 2
            continue
        if ch == "|":
            fields.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    if len(fields) < 7:
        raise CefError(f"CEF header has {len(fields) + 1} of 8 fields")
    return fields, text[i:]


def parse_extension(text: str) -> dict[str, str]:
    """``k=v k2=v two words`` -> dict; a value runs to the next `` key=``, trailing space dropped."""
    # one C-level split: [text before the first key, key1, value1, key2, value2, ...]
    pieces = _split_keys(text)
    out: dict[str, str] = {}
    for idx in range(1, len(pieces), 2):
        value = pieces[idx + 1].rstrip()
        out[pieces[idx]] = _unescape(value) if "\\" in value else value
    return out


_split_keys = _KEY.split


def _unescape(value: str) -> str:
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        ch = value[i]
        if ch == "\\" and i + 1 < n and value[i + 1] in _EXT_UNESCAPE:
            out.append(_EXT_UNESCAPE[value[i + 1]])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def apply_cef(event: Event, message: str, tz: tzinfo | None = None) -> None:
    """Fill ``event`` from the CEF ``message``; raises CefError when it is not valid CEF."""
    header, ext_text = split_header(message)
    version, vendor, product, dev_version, signature, name, severity = header
    info = event["event"]
    info["dataset"] = DATASET
    cef: dict[str, Any] = {"version": version, "name": name, "severity": severity}
    event["cef"] = cef
    event["observer"] = {**event.get("observer", {}), "vendor": vendor, "product": product, "version": dev_version}
    info["code"] = signature
    sev = _severity(severity)
    if sev is not None:
        info["severity"] = sev
    event["message"] = name
    extensions = parse_extension(ext_text)
    cef["extensions"] = extensions
    apply_mapping(event, _MAPPING, extensions, tz)


def _severity(text: str) -> int | None:
    text = text.strip()
    if text.isdecimal():
        return int(text)
    return _SEVERITY_WORDS.get(text.lower())


def _map_ip(event: Event, path: FieldPath, value: str, tz: tzinfo | None) -> None:
    if valid_ip(value):
        put_path(event, path, value)


def _map_port(event: Event, path: FieldPath, value: str, tz: tzinfo | None) -> None:
    if value.isdecimal() and int(value) < 65536:
        put_path(event, path, int(value))


def _map_int(event: Event, path: FieldPath, value: str, tz: tzinfo | None) -> None:
    if value.isdecimal():
        put_path(event, path, int(value))


def _map_transport(event: Event, path: FieldPath, value: str, tz: tzinfo | None) -> None:
    put_path(event, path, value.lower())


def _map_time(event: Event, path: FieldPath, value: str, tz: tzinfo | None) -> None:
    stamp = _timestamp(value, tz)
    if stamp is not None:
        event["@timestamp"] = stamp


_Mapper = Callable[[Event, FieldPath, str, "tzinfo | None"], None]
#: extension key -> how to map its value and where; one lookup per key instead of a chain of tests
_MAPPING: dict[str, tuple[_Mapper | None, FieldPath]] = {
    **{k: (None, p) for k, p in split_paths(_TEXT_KEYS).items()},
    "rt": (_map_time, ("@timestamp",)),
    "proto": (_map_transport, ("network", "transport")),
    **{k: (_map_int, p) for k, p in split_paths(_INT_KEYS).items()},
    **{k: (_map_port, p) for k, p in split_paths(_PORT_KEYS).items()},
    **{k: (_map_ip, p) for k, p in split_paths(_IP_KEYS).items()},
}


def _timestamp(value: str, tz: tzinfo | None) -> str | None:
    """``rt``: epoch milliseconds or ``MMM dd yyyy HH:mm:ss`` (local time in ``tz``, else UTC).

    Devices stamp bursts of events with the same second, so the text is cached per value.
    """
    key = (value, tz)
    if key in _RT_CACHE:
        return _RT_CACHE[key]
    try:
        if value.isdecimal():
            ts = datetime.fromtimestamp(int(value) / 1000, UTC)
        else:
            ts = datetime.strptime(value[:20], "%b %d %Y %H:%M:%S").replace(tzinfo=tz or UTC)
        stamp: str | None = iso_utc(ts)
    except (ValueError, OverflowError, OSError):
        stamp = None
    if len(_RT_CACHE) >= _RT_CACHE_SIZE:
        _RT_CACHE.clear()
    _RT_CACHE[key] = stamp
    return stamp


_RT_CACHE: dict[tuple[str, tzinfo | None], str | None] = {}
_RT_CACHE_SIZE = 4096
