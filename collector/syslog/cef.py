"""ArcSight Common Event Format (CEF) -> ECS.

``CEF:Version|Device Vendor|Device Product|Device Version|Signature ID|Name|Severity|Extension``.
Header fields escape ``|`` and ``\\``; extension values escape ``=``, ``\\`` and newlines, and a value
runs until the next unescaped `` key=``. Every extension key is kept verbatim under
``cef.extensions``; the well-known ones are also mapped to ECS when their value is valid (an
address that is not an IP never reaches ``source.ip``, where it would make the store reject the
whole event).
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime, tzinfo
from typing import Any

from soc_common.ecs import Event, put
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
    matches = list(_KEY.finditer(text))
    out: dict[str, str] = {}
    for idx, match in enumerate(matches):
        end = matches[idx + 1].start() if idx + 1 < len(matches) else len(text)
        out[match.group(1)] = _unescape(text[match.end() : end].rstrip())
    return out


def _unescape(value: str) -> str:
    if "\\" not in value:
        return value
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
    event["event"]["dataset"] = DATASET
    cef: dict[str, Any] = {"version": version, "name": name, "severity": severity}
    event["cef"] = cef
    event["observer"] = {**event.get("observer", {}), "vendor": vendor, "product": product, "version": dev_version}
    event["event"]["code"] = signature
    sev = _severity(severity)
    if sev is not None:
        event["event"]["severity"] = sev
    event["message"] = name
    extensions = parse_extension(ext_text)
    cef["extensions"] = extensions
    for key, value in extensions.items():
        _map(event, key, value, tz)


def _severity(text: str) -> int | None:
    text = text.strip()
    if text.isdecimal():
        return int(text)
    return _SEVERITY_WORDS.get(text.lower())


def _map(event: Event, key: str, value: str, tz: tzinfo | None) -> None:
    if not value:
        return
    if key in _IP_KEYS:
        if valid_ip(value):
            put(event, _IP_KEYS[key], value)
    elif key in _PORT_KEYS:
        if value.isdecimal() and int(value) < 65536:
            put(event, _PORT_KEYS[key], int(value))
    elif key in _INT_KEYS:
        if value.isdecimal():
            put(event, _INT_KEYS[key], int(value))
    elif key == "proto":
        put(event, "network.transport", value.lower())
    elif key == "rt":
        stamp = _timestamp(value, tz)
        if stamp is not None:
            event["@timestamp"] = stamp
    elif key in _TEXT_KEYS:
        put(event, _TEXT_KEYS[key], value)


def valid_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _timestamp(value: str, tz: tzinfo | None) -> str | None:
    """``rt``: epoch milliseconds or ``MMM dd yyyy HH:mm:ss`` (local time in ``tz``, else UTC)."""
    try:
        if value.isdecimal():
            ts = datetime.fromtimestamp(int(value) / 1000, UTC)
        else:
            ts = datetime.strptime(value[:20], "%b %d %Y %H:%M:%S").replace(tzinfo=tz or UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return iso_utc(ts)
