"""FortiGate (and look-alike) ``key=value`` logs -> ECS, dataset ``fortinet.firewall``.

``date=2024-05-01 time=10:00:01 devname="FG-HN" devid=FG100F type=traffic subtype=forward
srcip=10.0.0.5 srcport=51000 dstip=1.1.1.1 dstport=443 action=accept sentbyte=100 rcvdbyte=200``.
Values may be double-quoted (with spaces inside). All pairs are kept under ``fortinet.firewall``;
the common ones are mapped to ECS when valid.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any

from collector.syslog.cef import valid_ip
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
    out: dict[str, str] = {}
    for key, raw in _PAIR.findall(message):
        if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
            raw = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\")
        out[key] = raw
    return out


def apply_fortinet(event: Event, message: str, tz: tzinfo | None) -> None:
    pairs = parse_pairs(message)
    if not pairs:
        raise ValueError("no key=value pairs")
    event["event"]["dataset"] = DATASET
    event["fortinet"] = {"firewall": dict(pairs)}
    event["observer"] = {**event.get("observer", {}), "vendor": "Fortinet", "product": "FortiGate", "type": "firewall"}
    for key, value in pairs.items():
        if not value:
            continue
        if key in _IPS:
            if valid_ip(value):
                put(event, _IPS[key], value)
        elif key in _PORTS or key in _INTS:
            if value.isdecimal():
                port = int(value)
                if key in _INTS:
                    put(event, _INTS[key], port)
                elif port < 65536:
                    put(event, _PORTS[key], port)
        elif key == "proto" and value.isdecimal():
            put(event, "network.iana_number", value)
            put(event, "network.transport", _TRANSPORTS.get(value, value))
        elif key in _TEXT:
            put(event, _TEXT[key], value.lower() if key == "service" else value)
    _categorise(event, pairs)
    stamp = _timestamp(pairs, tz)
    if stamp is not None:
        event["@timestamp"] = stamp


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
    """``eventtime`` (epoch s/ms/us/ns) when present, else ``date``+``time`` in ``tz`` (or the log's)."""
    raw = pairs.get("eventtime", "")
    if raw.isdecimal():
        value = int(raw)
        while value > 10**11:  # ms, us or ns -> seconds-and-fraction below
            value //= 1000
        try:
            return iso_utc(datetime.fromtimestamp(value, UTC))
        except (OverflowError, OSError, ValueError):
            return None
    date, clock = pairs.get("date"), pairs.get("time")
    if not date or not clock:
        return None
    zone = tz
    match = _TZ.match(pairs.get("tz", ""))
    if match:
        sign = -1 if match.group(1) == "-" else 1
        zone = timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))
    try:
        local = datetime.strptime(f"{date} {clock}", "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return iso_utc(local.replace(tzinfo=zone or UTC))
