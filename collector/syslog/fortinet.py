"""FortiGate (and look-alike) ``key=value`` logs -> ECS, dataset ``fortinet.firewall``.

``date=2024-05-01 time=10:00:01 devname="FG-HN" devid=FG100F type=traffic subtype=forward
srcip=10.0.0.5 srcport=51000 dstip=1.1.1.1 dstport=443 action=accept sentbyte=100 rcvdbyte=200``.
Values may be double-quoted (with spaces inside). All pairs are kept under ``fortinet.firewall``;
the common ones are mapped to ECS when valid.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

from collector.syslog.fields import FieldPath, apply_mapping, put_path, split_paths, valid_ip
from soc_common.ecs import Event, put
from soc_common.parsers.common import iso_utc

DATASET = "fortinet.firewall"
_PAIR = re.compile(r'([A-Za-z0-9_]+)=("(?:[^"\\]|\\.)*"|\S*)')
_TZ = re.compile(r"^([+-])(\d{2}):?(\d{2})$")
_TRANSPORTS = {"6": "tcp", "17": "udp", "1": "icmp", "58": "ipv6-icmp", "47": "gre", "50": "esp", "132": "sctp"}

_IPS = {"srcip": "source.ip", "dstip": "destination.ip", "transip": "source.nat.ip", "tranip": "destination.nat.ip"}
_PORTS = {"srcport": "source.port", "dstport": "destination.port", "transport": "source.nat.port",
          "tranport": "destination.nat.port"}  # fmt: skip
_INTS = {"sentbyte": "source.bytes", "rcvdbyte": "destination.bytes", "sentpkt": "source.packets",
         "rcvdpkt": "destination.packets", "duration": "fortinet.firewall.duration"}  # fmt: skip
_TEXT = {
    "action": "event.action", "devname": "observer.name", "devid": "observer.serial_number",
    "logid": "event.code", "level": "log.level", "policyid": "rule.id", "policyname": "rule.name",
    "srcintf": "observer.ingress.interface.name", "dstintf": "observer.egress.interface.name",
    "user": "source.user.name", "msg": "message", "service": "network.protocol",
    "srccountry": "source.geo.country_name",
    "dstcountry": "destination.geo.country_name", "hostname": "url.domain", "url": "url.path",
}  # fmt: skip
_FAILURE_ACTIONS = {"deny", "block", "blocked", "dropped", "drop", "reset", "timeout"}


def is_fortinet(message: str) -> bool:
    """Cheap test: a FortiGate log always carries these keys near its start."""
    head = message[:300]
    return ("devid=" in head or "devname=" in head) and ("logid=" in head or "type=" in head)


def parse_pairs(message: str) -> dict[str, str]:
    """Every ``key=value`` pair (a repeated key keeps its first place and its last value)."""
    out = dict(_find_pairs(message))
    if '"' in message:
        for key in [k for k, v in out.items() if v[:1] == '"']:
            raw = out[key]
            if raw.endswith('"') and len(raw) >= 2:
                out[key] = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return out


_find_pairs = _PAIR.findall


def apply_fortinet(event: Event, message: str, tz: tzinfo | None) -> None:
    pairs = parse_pairs(message)
    if not pairs:
        raise ValueError("no key=value pairs")
    event["event"]["dataset"] = DATASET
    event["fortinet"] = {"firewall": dict(pairs)}
    event["observer"] = {**event.get("observer", {}), "vendor": "Fortinet", "product": "FortiGate", "type": "firewall"}
    apply_mapping(event, _MAPPING, pairs)
    _categorise(event, pairs)
    stamp = _timestamp(pairs, tz)
    if stamp is not None:
        event["@timestamp"] = stamp


def _map_ip(event: Event, path: FieldPath, value: str) -> None:
    if valid_ip(value):
        put_path(event, path, value)


def _map_port(event: Event, path: FieldPath, value: str) -> None:
    if value.isdecimal() and int(value) < 65536:
        put_path(event, path, int(value))


def _map_int(event: Event, path: FieldPath, value: str) -> None:
    if value.isdecimal():
        put_path(event, path, int(value))


def _map_proto(event: Event, path: FieldPath, value: str) -> None:
    if value.isdecimal():
        put_path(event, ("network", "iana_number"), value)
        put_path(event, ("network", "transport"), _TRANSPORTS.get(value, value))


def _map_lower_text(event: Event, path: FieldPath, value: str) -> None:
    put_path(event, path, value.lower())


_Mapper = Callable[[Event, FieldPath, str], None]
#: key -> how to map its value and where; later entries win, so the earlier checks' order is kept
_MAPPING: dict[str, tuple[_Mapper | None, FieldPath]] = {
    **{k: (_map_lower_text if k == "service" else None, p) for k, p in split_paths(_TEXT).items()},
    "proto": (_map_proto, ("network",)),
    **{k: (_map_port, p) for k, p in split_paths(_PORTS).items()},
    **{k: (_map_int, p) for k, p in split_paths(_INTS).items()},
    **{k: (_map_ip, p) for k, p in split_paths(_IPS).items()},
}


def _categorise(event: Event, pairs: dict[str, str]) -> None:
    info: dict[str, Any] = event["event"]
    kind = pairs.get("type", "")
    if kind == "traffic":
        info["category"] = ["network"]
        info["type"] = ["connection"]
    elif kind == "utm":
        info["category"] = ["network", "intrusion_detection"]
    action = pairs.get("action", "").lower()
    if action:
        info["outcome"] = "failure" if action in _FAILURE_ACTIONS else "success"
    sent, rcvd = pairs.get("sentbyte", ""), pairs.get("rcvdbyte", "")
    if sent.isdecimal() and rcvd.isdecimal():
        put(event, "network.bytes", int(sent) + int(rcvd))


def _timestamp(pairs: dict[str, str], tz: tzinfo | None) -> str | None:
    """``eventtime`` (epoch s/ms/us/ns) when present, else ``date``+``time`` in ``tz`` (or the log's).

    A firewall sends many lines per second with the same time fields, so the text is cached.
    """
    raw = pairs.get("eventtime", "")
    date, clock = pairs.get("date"), pairs.get("time")
    key = (raw, date, clock, pairs.get("tz", ""), tz)
    if key in _STAMP_CACHE:
        return _STAMP_CACHE[key]
    stamp = _compute_timestamp(raw, date, clock, key[3], tz)
    if len(_STAMP_CACHE) >= _STAMP_CACHE_SIZE:
        _STAMP_CACHE.clear()
    _STAMP_CACHE[key] = stamp
    return stamp


_STAMP_CACHE: dict[tuple[Any, ...], str | None] = {}
_STAMP_CACHE_SIZE = 4096


def _compute_timestamp(raw: str, date: str | None, clock: str | None, tz_text: str, tz: tzinfo | None) -> str | None:
    if raw.isdecimal():
        value = int(raw)
        while value > 10**11:  # ms, us or ns -> seconds-and-fraction below
            value //= 1000
        try:
            return iso_utc(datetime.fromtimestamp(value, UTC))
        except (OverflowError, OSError, ValueError):
            return None
    if not date or not clock:
        return None
    zone = tz
    match = _TZ.match(tz_text)
    if match:
        sign = -1 if match.group(1) == "-" else 1
        zone = timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))
    try:
        local = datetime.strptime(f"{date} {clock}", "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return iso_utc(local.replace(tzinfo=zone or UTC))
