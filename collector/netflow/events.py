"""Decoded flow records -> ECS ``netflow.flow`` events.

``event.id`` comes from the record's place in the export stream (exporter, version, domain,
sequence number, export time, set and record position): an exporter re-sending the same packet
produces duplicates the store drops, while an exporter restart (same sequence numbers, new
export time) still produces new events.
"""

from __future__ import annotations

import contextlib
import socket
import struct
from typing import Any

from agent.flows.community_id import community_id
from agent.flows.events import TRANSPORTS, iso_ts, tcp_flag_names
from collector.netflow.decoder import PacketContext, RecordBatch
from collector.netflow.fields import convert
from soc_common.ecs import ECS_VERSION, Event, stable_event_id

DATASET = "netflow.flow"
_NTP_EPOCH_OFFSET = 2_208_988_800
_WRAP = 1 << 32
_PORTED = (6, 17, 132)
_DAY_MS = 86_400_000


def batch_events(batch: RecordBatch) -> list[Event]:
    ctx, template = batch.context, batch.template
    names, kinds = template.names, template.kinds
    export_ms = ctx.export_secs * 1000 + ctx.export_nsecs // 1_000_000
    exporter_info: dict[str, Any] = {"address": ctx.exporter, "version": ctx.version}
    exporter_info["source_id" if ctx.version == 9 else "domain_id"] = ctx.domain
    if ctx.uptime_ms is not None:
        exporter_info["uptime_millis"] = ctx.uptime_ms
    events = []
    for i, values in enumerate(batch.records):
        raw: dict[str, Any] = {}
        for name, kind, value in zip(names, kinds, values, strict=False):
            raw[name] = value if type(value) is int else convert(kind, value)
        event_id = stable_event_id(
            ctx.exporter, ctx.version, ctx.domain, ctx.sequence, ctx.export_secs, batch.set_index, i
        )
        events.append(_event(raw, ctx, export_ms, exporter_info, event_id))
    return events


def _event(raw: dict[str, Any], ctx: PacketContext, export_ms: int, exporter: dict[str, Any], eid: str) -> Event:
    start_ms, end_ms = _times(raw, ctx, export_ms)
    event_info: dict[str, Any] = {
        "id": eid,
        "kind": "event",
        "dataset": DATASET,
        "module": "netflow",
        "category": ["network"],
        "type": ["connection"],
        "action": "netflow_flow",
    }
    if start_ms is not None:
        event_info["start"] = iso_ts(start_ms / 1000)
    if end_ms is not None:
        event_info["end"] = iso_ts(end_ms / 1000)
        if start_ms is not None and end_ms >= start_ms:
            event_info["duration"] = (end_ms - start_ms) * 1_000_000
    netflow: dict[str, Any] = dict(raw)
    netflow["exporter"] = exporter
    sampling = ctx.options.get("sampling_interval")
    if sampling:
        netflow["sampling_interval"] = sampling
    event: Event = {
        "@timestamp": iso_ts((end_ms if end_ms is not None else export_ms) / 1000),
        "ecs": {"version": ECS_VERSION},
        "event": event_info,
        "observer": {"ip": ctx.exporter, "type": "netflow-exporter"},
        "netflow": netflow,
    }
    _endpoints(event, raw)
    return event


def _endpoints(event: Event, raw: dict[str, Any]) -> None:
    sip = raw.get("source_ipv4_address") or raw.get("source_ipv6_address")
    dip = raw.get("destination_ipv4_address") or raw.get("destination_ipv6_address")
    proto = raw.get("protocol_identifier")
    sport = _port(raw.get("source_transport_port"))
    dport = _port(raw.get("destination_transport_port"))
    octets = raw.get("octet_delta_count", raw.get("octet_total_count"))
    packets = raw.get("packet_delta_count", raw.get("packet_total_count"))
    source: dict[str, Any] = {}
    destination: dict[str, Any] = {}
    network: dict[str, Any] = {}
    if isinstance(sip, str):
        source["ip"] = sip
    if isinstance(dip, str):
        destination["ip"] = dip
    if isinstance(proto, int):
        network["iana_number"] = str(proto)
        network["transport"] = TRANSPORTS.get(proto, str(proto))
        if proto in _PORTED:
            if isinstance(sport, int):
                source["port"] = sport
            if isinstance(dport, int):
                destination["port"] = dport
    if isinstance(octets, int):
        source["bytes"] = network["bytes"] = octets
    if isinstance(packets, int):
        source["packets"] = network["packets"] = packets
    flags = raw.get("tcp_control_bits")
    if proto == 6 and isinstance(flags, int) and flags:
        network["tcp_flags"] = tcp_flag_names(flags)
    if isinstance(sip, str) and isinstance(dip, str) and isinstance(proto, int) and proto < 256:
        with contextlib.suppress(OSError, ValueError, struct.error):  # a mangled record keeps its flow
            network["community_id"] = _community_id(sip, dip, proto, sport, dport, raw)
    if "ip_version" in raw:
        network["type"] = "ipv6" if raw["ip_version"] == 6 else "ipv4"
    event["source"], event["destination"], event["network"] = source, destination, network
    observer = event["observer"]
    if isinstance(raw.get("ingress_interface"), int):
        observer["ingress"] = {"interface": {"id": str(raw["ingress_interface"])}}
    if isinstance(raw.get("egress_interface"), int):
        observer["egress"] = {"interface": {"id": str(raw["egress_interface"])}}


def _port(value: Any) -> int | None:
    return value if isinstance(value, int) and 0 <= value < 65536 else None


def _community_id(sip: str, dip: str, proto: int, sport: Any, dport: Any, raw: dict[str, Any]) -> str:
    family = socket.AF_INET6 if ":" in sip else socket.AF_INET
    if proto in (1, 58):
        code = raw.get("icmp_type_code_ipv4", raw.get("icmp_type_code_ipv6"))
        if not isinstance(code, int) or not 0 <= code < 65536:
            code = dport if isinstance(dport, int) else 0  # v5/softflowd carry type<<8|code in dport
        sport, dport = code >> 8, code & 0xFF
    return community_id(
        socket.inet_pton(family, sip),
        socket.inet_pton(family, dip),
        proto,
        sport if isinstance(sport, int) else 0,
        dport if isinstance(dport, int) else 0,
    )


def _times(raw: dict[str, Any], ctx: PacketContext, export_ms: int) -> tuple[int | None, int | None]:
    return _time(raw, ctx, export_ms, "start"), _time(raw, ctx, export_ms, "end")


def _time(raw: dict[str, Any], ctx: PacketContext, export_ms: int, which: str) -> int | None:
    """Epoch milliseconds of the flow start/end from whichever encoding the exporter used."""
    value = raw.get(f"flow_{which}_milliseconds")
    if isinstance(value, int):
        return value
    value = raw.get(f"flow_{which}_seconds")
    if isinstance(value, int):
        return value * 1000
    for unit in ("microseconds", "nanoseconds"):
        value = raw.get(f"flow_{which}_{unit}")
        if isinstance(value, int):  # NTP timestamp: seconds since 1900 . 2^-32 fractions
            return ((value >> 32) - _NTP_EPOCH_OFFSET) * 1000 + ((value & 0xFFFFFFFF) * 1000 >> 32)
    value = raw.get(f"flow_{which}_delta_microseconds")
    if isinstance(value, int):
        return export_ms - value // 1000
    value = raw.get(f"flow_{which}_sys_up_time")
    if isinstance(value, int):
        if ctx.uptime_ms is not None:
            return export_ms - (ctx.uptime_ms - value) % _WRAP
        init = ctx.options.get("system_init_ms")
        if init is not None:
            when = init + value
            # An uptime that went "negative" and wrapped (softflowd replaying a capture does this)
            # would land ~49 days in the future; read it as the signed offset it was meant as.
            return when - _WRAP if when > export_ms + _DAY_MS else when
    return None
