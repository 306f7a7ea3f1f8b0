"""Turn the rule pack's sample files into ECS events, through the real producers.

A sample file (``tests/rulepack/samples/<rule-file-stem>.yml``) lists ``match`` cases (the rule
must fire) and ``near_miss`` cases (it must stay silent). A case is a name plus ``events``: steps,
each one kind of source record that the real parser or normaliser turns into events:

* ``authlog`` / ``syslog``: a message ``"prog[pid]: text"``; the harness prepends the timestamp and
  host and parses it with :func:`soc_common.parsers.parse_line` (the agent's and collector's parser).
* ``windows``: ``{channel, code, data, ...}`` -> an event-log record -> ``normalize_event``.
* ``evtx``: ``{file, code, where}`` -> the matching records of a real file in the shared
  evtx-attack-samples, read by ``agent.windows.evtx_file.read_evtx``.
* ``flow`` / ``dns``: the agent flow meter's event builders (DNS wire format parsed by its parser).
* ``inventory``: a ``soc.inventory`` snapshot with protection state from the agent's parsers.
* ``agent``: an agent self-event (``soc.agent``) as the agent emits it.

A step may repeat (``repeat``, ``every`` seconds, ``at`` offset) with ``{i}``, ``{n}`` and ``vars``
substituted into its strings, so correlation cases are bursts or slow trickles of real records.
Every event then passes through the collector's processor chain (zones, intel), as in production.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from agent.flows.dns import parse_dns
from agent.flows.events import flow_event, metadata_event
from agent.runtime import agent_event
from agent.sources.inventory import defender_state_from_json
from agent.windows.evtx_file import read_evtx
from agent.windows.normalize import normalize_event
from soc_common.ecs import Event, get, iso, new_event, put, stable_event_id
from soc_common.parsers import parse_line

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / ".." / "shared" / "data"
EVTX_DIR = SHARED / "evtx-attack-samples"
CASE_START = datetime(2024, 3, 1, 2, 0, 0, tzinfo=UTC)

CHANNELS = {
    "security": ("Security", "Microsoft-Windows-Security-Auditing"),
    "system": ("System", "Service Control Manager"),
    "sysmon": ("Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon"),
    "defender": ("Microsoft-Windows-Windows Defender/Operational", "Microsoft-Windows-Windows Defender"),
}
KEYWORDS = {"audit_success": "0x8020000000000000", "audit_failure": "0x8010000000000000"}
TRANSPORTS = {"tcp": 6, "udp": 17}
_TOKEN = re.compile(r"\{(\w+)\}")


class SampleError(Exception):
    """A sample file is malformed; the message says where."""


class EvtxMissing(Exception):
    """The shared evtx-attack-samples are not available on this machine."""


def _seconds(value: Any) -> float:
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    units = {"s": 1, "m": 60, "h": 3600}
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


def _fill(node: Any, values: Mapping[str, str]) -> Any:
    """Substitute ``{name}`` tokens for known names only (GUIDs in command lines stay as they are)."""
    if isinstance(node, str):
        return _TOKEN.sub(lambda m: values.get(m.group(1), m.group(0)), node)
    if isinstance(node, list):
        return [_fill(v, values) for v in node]
    if isinstance(node, dict):
        return {k: _fill(v, values) for k, v in node.items()}
    return node


def _ip_bytes(text: str) -> bytes:
    import ipaddress

    return ipaddress.ip_address(text).packed


def _line(spec: str, when: datetime, host: str) -> Event:
    """A syslog-format line as the agent's file source reads it (ISO time, host, program, message)."""
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S") + "Z"
    return parse_line(f"{stamp} {host} {spec}")


def _windows(spec: Mapping[str, Any], when: datetime, record_id: int) -> Event:
    channel, provider = CHANNELS.get(str(spec.get("channel", "")).lower(), (spec.get("channel"), None))
    provider = spec.get("provider", provider)
    if not channel or not provider:
        raise SampleError(f"windows step needs a known channel or channel+provider: {spec}")
    system: dict[str, Any] = {
        "Provider": {"#attributes": {"Name": provider}},
        "EventID": int(spec["code"]),
        "Channel": channel,
        "Computer": spec.get("computer", "PC-KT01.tinhuy.local"),
        "EventRecordID": record_id,
        "TimeCreated": {"#attributes": {"SystemTime": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}},
        "Level": 4,
    }
    if spec.get("keywords"):
        system["Keywords"] = KEYWORDS[spec["keywords"]]
    data = {str(k): str(v) for k, v in (spec.get("data") or {}).items()}
    body: dict[str, Any] = {"System": system}
    if spec.get("userdata"):
        body["UserData"] = {spec["userdata"]: data}
    else:
        body["EventData"] = {"Data": [{"#attributes": {"Name": k}, "#text": v} for k, v in data.items()]}
    return normalize_event({"Event": body})


@cache
def _evtx_events(relative: str) -> tuple[Event, ...]:
    path = EVTX_DIR / relative
    if not path.is_file():
        raise EvtxMissing(f"{path} not found (the shared evtx-attack-samples are not on this machine)")
    return tuple(read_evtx(path))


def _evtx(spec: Mapping[str, Any]) -> list[Event]:
    import copy

    wanted = {k: str(v).lower() for k, v in (spec.get("where") or {}).items()}
    out: list[Event] = []
    for event in _evtx_events(str(spec["file"])):
        if event["event"].get("code") != str(spec["code"]):
            continue
        if all(v in str(get(event, k, "")).lower() for k, v in wanted.items()):
            out.append(copy.deepcopy(event))
    if not out:
        raise SampleError(f"no record with code {spec['code']} and {wanted} in {spec['file']}")
    return out[: int(spec.get("limit", 1))]


def _flow(spec: Mapping[str, Any], when: datetime, host: Mapping[str, Any] | None) -> Event:
    start = when.timestamp()
    proto = TRANSPORTS[str(spec.get("transport", "tcp"))]
    return flow_event(
        host=dict(host) if host else None,
        proto=proto,
        src=_ip_bytes(str(spec["src"])),
        dst=_ip_bytes(str(spec["dst"])),
        sport=int(spec.get("sport", 49152)),
        dport=int(spec["dport"]),
        vlan=0,
        start=start,
        end=start + float(spec.get("duration", 2.0)),
        fwd=(int(spec.get("packets", 6)), int(spec.get("bytes", 900)), 0x1B if proto == 6 else 0),
        rev=(int(spec.get("packets", 6)), int(spec.get("bytes", 900)) * 4, 0x1B if proto == 6 else 0),
        reason="end",
    )


def _dns_query(name: str, qtype: int, ident: int) -> bytes:
    """A DNS query in wire format, as a resolver client sends it."""
    import struct

    labels = b"".join(bytes([len(p)]) + p.encode("ascii") for p in name.rstrip(".").split("."))
    return struct.pack("!HHHHHH", ident & 0xFFFF, 0x0100, 1, 0, 0, 0) + labels + b"\x00" + struct.pack("!HH", qtype, 1)


def _dns(spec: Mapping[str, Any], when: datetime, ident: int) -> Event:
    qtypes = {"A": 1, "TXT": 16, "AAAA": 28, "CNAME": 5, "MX": 15}
    parsed = parse_dns(_dns_query(str(spec["name"]), qtypes[str(spec.get("type", "A"))], ident))
    if parsed is None:
        raise SampleError(f"the agent's DNS parser rejected {spec}")
    return metadata_event(
        host=None,
        dataset="network_traffic.dns",
        protocol="dns",
        ts=when.timestamp(),
        proto=17,
        client=(_ip_bytes(str(spec["src"])), int(spec.get("sport", 53000 + ident % 1000))),
        server=(_ip_bytes(str(spec.get("dst", "10.0.0.53"))), 53),
        vlan=0,
        fields={"dns": parsed},
        identity=ident,
    )


def _inventory(spec: Mapping[str, Any], when: datetime) -> Event:
    """A snapshot as ``InventorySource.snapshot`` shapes it, with the protection part under test."""
    import json

    event = new_event(kind="state", dataset="soc.inventory", module="soc", timestamp=when)
    put(event, "event.category", ["host"])
    put(event, "event.type", ["info"])
    put(event, "event.action", "inventory_snapshot")
    put(event, "host.hostname", spec.get("host", "PC-KT01"))
    put(event, "host.name", spec.get("host", "PC-KT01"))
    put(event, "host.ip", [spec.get("ip", "10.10.5.21")])
    if "defender" in spec:
        protection = defender_state_from_json(json.dumps(spec["defender"]))
    else:
        protection = dict(spec["protection"])
    put(event, "soc.inventory.protection", protection)
    return event


def _agent(spec: Mapping[str, Any], when: datetime) -> Event:
    fields = dict(spec.get("fields") or {})
    event = agent_event(str(spec["action"]), str(spec["message"]), str(spec.get("outcome", "success")), **fields)
    event["@timestamp"] = iso(when)
    put(event, "host.name", spec.get("host", "PC-KT01"))
    return event


_KINDS = ("authlog", "syslog", "windows", "evtx", "flow", "dns", "inventory", "agent")


def _one(kind: str, spec: Any, when: datetime, step: Mapping[str, Any], serial: int) -> list[Event]:
    host = str(step.get("host", "srv-web01"))
    builders: dict[str, Callable[[], list[Event]]] = {
        "authlog": lambda: [_line(spec, when, host)],
        "syslog": lambda: [_line(spec, when, host)],
        "windows": lambda: [_windows(spec, when, serial)],
        "evtx": lambda: _evtx(spec),
        "flow": lambda: [_flow(spec, when, step.get("sensor"))],
        "dns": lambda: [_dns(spec, when, serial)],
        "inventory": lambda: [_inventory(spec, when)],
        "agent": lambda: [_agent(spec, when)],
    }
    return builders[kind]()


def build_case(case: Mapping[str, Any], label: str) -> list[Event]:
    """All events of one case, in order, each with a unique ``event.id``."""
    steps = case.get("events")
    if not isinstance(steps, list) or not steps:
        raise SampleError(f"{label}: a case needs a non-empty 'events' list")
    events: list[Event] = []
    cursor = 0.0
    serial = 1000
    for s_index, step in enumerate(steps):
        kinds = [k for k in _KINDS if k in step]
        if len(kinds) != 1:
            raise SampleError(f"{label} step {s_index}: exactly one of {_KINDS} expected, got {kinds}")
        kind = kinds[0]
        repeat = int(step.get("repeat", 1))
        every = _seconds(step.get("every", 1))
        offset = _seconds(step["at"]) if "at" in step else cursor
        variables: dict[str, list[Any]] = dict(step.get("vars") or {})
        for i in range(repeat):
            when = CASE_START + timedelta(seconds=offset + i * every)
            values = {"i": str(i), "n": str(i + 1)}
            values.update({k: str(v[i % len(v)]) for k, v in variables.items()})
            spec = _fill(step[kind], values)
            serial += 1
            for event in _one(kind, spec, when, step, serial):
                for key, value in (step.get("labels") or {}).items():
                    put(event, f"soc.{key}", value)  # what the agent's EventStamper adds from host labels
                if kind != "evtx":
                    put(event, "event.id", stable_event_id("rulepack", label, s_index, i))
                events.append(event)
        cursor = offset + (repeat - 1) * every + 1
    return events


def iter_cases(doc: Mapping[str, Any], expect: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for index, case in enumerate(doc.get(expect) or []):
        yield str(case.get("name", f"{expect}{index}")), case
