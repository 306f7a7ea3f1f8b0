"""Web server access logs in the common and combined formats (nginx and Apache share them).

One anchored regex reads the fixed part; anything after the user agent (nginx ``$request_time``,
Apache ``%D``) is tolerated and ignored. The request line is split by hand because scanners send
garbage there (TLS handshakes, bare paths) and that must still produce an event with the status.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from soc_common.ecs import Event, add_related
from soc_common.parsers.authlog import normalize_ip
from soc_common.parsers.common import DEFAULT_OPTIONS, ParseOptions, base_event, iso_utc, mark_failure

FAILURE_TAG = "_accessparsefailure"

_LINE = re.compile(
    r'(?P<client>\S+) (?P<ident>\S+) (?P<user>.+?) \[(?P<time>[^\]]+)\] "(?P<request>(?:[^"\\]|\\.)*)" '
    r"(?P<status>\d{3}|-) (?P<bytes>\d+|-)"
    r'(?: "(?P<referrer>(?:[^"\\]|\\.)*)" "(?P<agent>(?:[^"\\]|\\.)*)")?'
)
_MONTHS = {"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6}
_MONTHS |= {"Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10, "Nov": 11, "Dec": 12}


def looks_like_access(line: str) -> bool:
    """Cheap guess for auto-detection: ``client ident user [time] "``."""
    bracket = line.find(" [", 0, 120)
    return bracket > 0 and line.find('] "', bracket, bracket + 40) > 0


def parse_access(line: str, opts: ParseOptions = DEFAULT_OPTIONS, *, dataset: str = "nginx.access") -> Event:
    """One access-log line; a line that does not fit keeps ``event.original`` and is tagged."""
    event = base_event(line, dataset, opts.read_time)
    m = _LINE.match(line)
    if not m:
        return mark_failure(event, "not a common/combined access log line", FAILURE_TAG)
    try:
        event["@timestamp"] = iso_utc(_parse_clf_time(m["time"]))
    except (ValueError, KeyError):
        mark_failure(event, f"invalid access log timestamp: {m['time']!r}", FAILURE_TAG)
    event["event"].update({"category": ["web"], "type": ["access"]})
    _client(event, m["client"])
    if m["user"] != "-":
        event["user"] = {"name": m["user"]}
        add_related(event, "user", m["user"])
    _request(event, _unescape(m["request"]))
    http: dict[str, Any] = event.setdefault("http", {})
    response: dict[str, Any] = {}
    if m["status"] != "-":
        status = int(m["status"])
        response["status_code"] = status
        event["event"]["outcome"] = "failure" if status >= 400 else "success"
    if m["bytes"] != "-":
        response["body"] = {"bytes": int(m["bytes"])}
    if response:
        http["response"] = response
    referrer = m["referrer"]
    if referrer and referrer != "-":
        http.setdefault("request", {})["referrer"] = _unescape(referrer)
    agent = m["agent"]
    if agent and agent != "-":
        event["user_agent"] = {"original": _unescape(agent)}
    return event


def _client(event: Event, client: str) -> None:
    source: dict[str, Any] = {"address": client}
    ip = normalize_ip(client)
    if ip is not None:
        source["ip"] = ip
        add_related(event, "ip", ip)
    else:
        source["domain"] = client
    event["source"] = source


def _request(event: Event, request: str) -> None:
    parts = request.split(" ")
    http: dict[str, Any] = event.setdefault("http", {})
    if len(parts) == 3 and parts[0].isalpha() and parts[2].startswith("HTTP/"):
        method, target, version = parts
        http["request"] = {"method": method.upper()}
        http["version"] = version[5:]
        url: dict[str, Any] = {"original": target}
        path, sep, query = target.partition("?")
        if "://" in path:
            scheme, _, rest = path.partition("://")
            host, slash, path_rest = rest.partition("/")
            url["scheme"] = scheme
            url["domain"] = host
            path = slash + path_rest
        url["path"] = path
        if sep:
            url["query"] = query
        event["url"] = url
    elif request and request != "-":
        # Not a request line (a scanner's binary probe, a bare path): keep it for the analyst.
        event["url"] = {"original": request}
        event.setdefault("soc", {})["invalid_request"] = True


def _parse_clf_time(text: str) -> datetime:
    """``10/Oct/2000:13:55:36 -0700`` without strptime (too slow for the hot path)."""
    day, month, rest = text[:2], text[3:6], text[7:]
    year, hour, minute, second = rest[0:4], rest[5:7], rest[8:10], rest[11:13]
    zone = rest[14:19]
    if len(zone) != 5 or zone[0] not in "+-" or rest[4] != ":":
        raise ValueError(text)
    sign = -1 if zone[0] == "-" else 1
    offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])) * sign
    return datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), tzinfo=timezone(offset))


def _unescape(text: str) -> str:
    r"""nginx writes ``\x22`` and ``\"`` for quotes inside fields; undo the common escapes."""
    if "\\" not in text:
        return text
    return text.replace('\\"', '"').replace("\\x22", '"').replace("\\\\", "\\")
