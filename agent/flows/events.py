"""Turn finished flows and parsed protocol metadata into ECS events.

Identity is deterministic: a flow's ``event.id`` comes from (host, community id, start time), so
replaying the same capture, or re-sending after a crash, produces duplicates the collector drops.
"""

from __future__ import annotations

import math
import socket
import time
from typing import Any

from agent.flows.community_id import community_id
from agent.flows.decode import ICMP, ICMPV6, TCP, TCP_FLAG_NAMES, UDP
from soc_common.ecs import ECS_VERSION, Event, stable_event_id

TRANSPORTS = {6: "tcp", 17: "udp", 1: "icmp", 58: "ipv6-icmp", 47: "gre", 50: "esp", 132: "sctp", 2: "igmp"}
_WITH_PORTS = (TCP, UDP, 132)


def ip_text(addr: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(addr) == 4 else socket.AF_INET6, addr)


#: "YYYY-MM-DDTHH:MM:SS" per epoch second; bounded, cleared when full
_second_text: dict[int, str] = {}


def iso_ts(ts: float) -> str:
    """``soc_common.ecs.iso`` for an epoch float, with the date-time part cached per second.

    Flow starts and ends cluster in time, so most calls reuse a recent second's text (a cache of
    one second would thrash between each flow's start and end).
    """
    second = math.floor(ts)
    micro = round((ts - second) * 1e6)  # as datetime.fromtimestamp rounds: half to even
    if micro >= 1_000_000:
        second += 1
        micro -= 1_000_000
    text = _second_text.get(second)
    if text is None:
        if len(_second_text) >= 4096:
            _second_text.clear()
        y, mo, d, h, mi, sec = time.gmtime(second)[:6]
        text = _second_text[second] = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{sec:02d}"
    return f"{text}.{micro // 1000:03d}Z"


def _new_event(dataset: str, ts: float, event_id: str) -> Event:
    """``soc_common.ecs.new_event``'s shape, from an epoch float without a datetime round trip."""
    return {
        "@timestamp": iso_ts(ts),
        "ecs": {"version": ECS_VERSION},
        "event": {"id": event_id, "kind": "event", "dataset": dataset, "module": "network_traffic"},
    }


def host_key(host: dict[str, Any] | None) -> str:
    """The part of an event id that says which sensor saw the traffic."""
    if not host:
        return ""
    return str(host.get("id") or host.get("name") or host.get("hostname") or "")


#: flag names for every flags byte: flow records are emitted often enough for the loop to show
_FLAG_NAMES = tuple(
    tuple(name for bit, name in enumerate(TCP_FLAG_NAMES) if flags & (1 << bit)) for flags in range(256)
)


def tcp_flag_names(flags: int) -> list[str]:
    return list(_FLAG_NAMES[flags & 0xFF])


def _network(proto: int, src: bytes, cid: str, vlan: int | None) -> dict[str, Any]:
    """ECS ``network`` of a flow or a packet: transport, IANA number, IP version, Community ID, VLAN."""
    network: dict[str, Any] = {
        "transport": TRANSPORTS.get(proto, str(proto)),
        "iana_number": str(proto),
        "type": "ipv4" if len(src) == 4 else "ipv6",
        "community_id": cid,
    }
    if vlan:
        network["vlan"] = {"id": str(vlan)}
    return network


def _endpoints(event: Event, proto: int, src: bytes, dst: bytes, sport: int, dport: int, vlan: int, cid: str) -> None:
    sip, dip = ip_text(src), ip_text(dst)
    event["source"] = {"ip": sip}
    event["destination"] = {"ip": dip}
    if proto in _WITH_PORTS:
        event["source"]["port"] = sport
        event["destination"]["port"] = dport
    network = _network(proto, src, cid, vlan)
    event["network"] = network
    event["related"] = {"ip": [sip] if sip == dip else [sip, dip]}


def flow_event(
    *,
    host: dict[str, Any] | None,
    proto: int,
    src: bytes,
    dst: bytes,
    sport: int,
    dport: int,
    vlan: int,
    start: float,
    end: float,
    fwd: tuple[int, int, int],
    rev: tuple[int, int, int],
    reason: str,
) -> Event:
    """A ``network_traffic.flow`` event; ``fwd``/``rev`` are (packets, bytes, tcp flags) per direction.

    Built as literals in one go (same keys, same order as :func:`metadata_event`'s shape): one of
    these is made per flow, which is a visible share of a replay's time.
    """
    cid = community_id(src, dst, proto, sport, dport)
    begun = iso_ts(start)
    sip, dip = ip_text(src), ip_text(dst)
    source: dict[str, Any] = {"ip": sip}
    destination: dict[str, Any] = {"ip": dip}
    if proto in _WITH_PORTS:
        source["port"] = sport
        destination["port"] = dport
    source["packets"], source["bytes"] = fwd[0], fwd[1]
    destination["packets"], destination["bytes"] = rev[0], rev[1]
    network = _network(proto, src, cid, vlan)
    network["packets"] = fwd[0] + rev[0]
    network["bytes"] = fwd[1] + rev[1]
    if proto == TCP:
        network["tcp_flags"] = list(_FLAG_NAMES[(fwd[2] | rev[2]) & 0xFF])
    event: Event = {
        "@timestamp": begun,
        "ecs": {"version": ECS_VERSION},
        "event": {
            "id": stable_event_id(host_key(host), "flow", cid, repr(start)),
            "kind": "event",
            "dataset": "network_traffic.flow",
            "module": "network_traffic",
            "category": ["network"],
            "type": ["connection", "end"],
            "action": "network_flow",
            "reason": reason,
            "start": begun,
            "end": iso_ts(end),
            "duration": round((end - start) * 1e6) * 1000,  # float seconds hold microseconds, not nanoseconds
        },
        "source": source,
        "destination": destination,
        "network": network,
        "related": {"ip": [sip] if sip == dip else [sip, dip]},
    }
    if proto in (ICMP, ICMPV6):
        event["icmp"] = {"type": sport, "code": dport}
    if host:
        event["host"] = dict(host)
    return event


def metadata_event(
    *,
    host: dict[str, Any] | None,
    dataset: str,
    protocol: str,
    ts: float,
    proto: int,
    client: tuple[bytes, int],
    server: tuple[bytes, int],
    vlan: int,
    fields: dict[str, Any],
    identity: object,
) -> Event:
    """A ``network_traffic.dns|tls|http`` event; ``source`` is always the client side."""
    cid = community_id(client[0], server[0], proto, client[1], server[1])
    event = _new_event(dataset, ts, stable_event_id(host_key(host), dataset, cid, repr(ts), identity))
    _endpoints(event, proto, client[0], server[0], client[1], server[1], vlan, cid)
    event["network"]["protocol"] = protocol
    event["event"].update(category=["network"], type=["protocol"], action=protocol)
    event.update(fields)
    if host:
        event["host"] = dict(host)
    return event
