"""Decoded flow records -> ECS ``netflow.flow`` events.

``event.id`` comes from the record's place in the export stream (exporter, version, domain,
sequence number, export time, set and record position): an exporter re-sending the same packet
produces duplicates the store drops, while an exporter restart (same sequence numbers, new
export time) still produces new events.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import struct
from typing import Any

from agent.flows.community_id import community_id
from agent.flows.events import TRANSPORTS, iso_ts, tcp_flag_names
from collector.netflow.decoder import PacketContext, RecordBatch
from collector.netflow.fields import Kind, convert
from collector.netflow.templates import Template
from soc_common.ecs import ECS_VERSION, Event

DATASET = "netflow.flow"
_NTP_EPOCH_OFFSET = 2_208_988_800
_WRAP = 1 << 32
_PORTED = (6, 17, 132)
_DAY_MS = 86_400_000
_FLAG_NAMES: dict[int, tuple[str, ...]] = {}  # tcp_control_bits -> names; a few dozen values in practice


def batch_events(batch: RecordBatch) -> list[Event]:
    """One event per record of one data set.

    Hot path (every flow of every exporter): what is the same for the whole set (exporter object,
    the event-id hash prefix, which fields need converting from bytes) is computed once here, so a
    record costs a dict from its tuple, one hash copy and the endpoint fields.
    """
    ctx, template = batch.context, batch.template
    if not batch.records:
        return []
    names = template.names
    export_ms = ctx.export_secs * 1000 + ctx.export_nsecs // 1_000_000
    exporter_info: dict[str, Any] = {"address": ctx.exporter, "version": ctx.version}
    exporter_info["source_id" if ctx.version == 9 else "domain_id"] = ctx.domain
    if ctx.uptime_ms is not None:
        exporter_info["uptime_millis"] = ctx.uptime_ms
    # Same bytes as soc_common.ecs.stable_event_id(exporter, version, domain, sequence, secs, set, i):
    # the prefix is hashed once per set and copied per record, so ids match the generic helper's.
    prefix = hashlib.blake2b(digest_size=16)
    for part in (ctx.exporter, ctx.version, ctx.domain, ctx.sequence, ctx.export_secs, batch.set_index):
        prefix.update(str(part).encode("utf-8", "surrogatepass") + b"\x1f")
    converted = _converted_positions(template, batch.records[0])
    events = []
    for i, values in enumerate(batch.records):
        raw: dict[str, Any] = dict(zip(names, values, strict=False))
        for pos, name, kind in converted:
            value = values[pos]
            if type(value) is not int:
                raw[name] = convert(kind, value)
        h = prefix.copy()
        h.update(b"%d\x1f" % i)
        events.append(_event(raw, ctx, export_ms, exporter_info, h.hexdigest()))
    return events


def _converted_positions(template: Template, first: tuple[Any, ...]) -> tuple[tuple[int, str, Kind], ...]:
    """Positions whose decoded value may be bytes (addresses, strings, long or variable fields).

    Struct-decoded unsigned fields are already ints; everything else goes through ``convert``. When a
    name repeats, only its last position counts, as it would when the dict is built value by value.
    """
    names, kinds = template.names, template.kinds
    last = {name: pos for pos, name in enumerate(names)}
    variable = template.record_struct is None
    return tuple(
        (pos, name, kind)
        for pos, (name, kind) in enumerate(zip(names, kinds, strict=False))
        if last[name] == pos
        and (variable or kind is not Kind.UNSIGNED or (pos < len(first) and type(first[pos]) is not int))
    )


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
        end_text = event_info["end"] = iso_ts(end_ms / 1000)
        if start_ms is not None and end_ms >= start_ms:
            event_info["duration"] = (end_ms - start_ms) * 1_000_000
    else:
        end_text = iso_ts(export_ms / 1000)
    netflow: dict[str, Any] = dict(raw)
    netflow["exporter"] = exporter
    sampling = ctx.options.get("sampling_interval")
    if sampling:
        netflow["sampling_interval"] = sampling
    event: Event = {
        "@timestamp": end_text,
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
        network["tcp_flags"] = _flag_names(flags)
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


def _flag_names(flags: int) -> list[str]:
    """``tcp_flag_names`` memoised: the same few flag combinations recur on every TCP flow."""
    names = _FLAG_NAMES.get(flags)
    if names is None:
        names = tuple(tcp_flag_names(flags))
        if len(_FLAG_NAMES) < 4096:  # a hostile exporter's 64-bit "flags" cannot grow it without bound
            _FLAG_NAMES[flags] = names
    return list(names)


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


def _time_keys(which: str) -> tuple[str, ...]:
    return tuple(
        f"flow_{which}_{unit}"
        for unit in ("milliseconds", "seconds", "microseconds", "nanoseconds", "delta_microseconds", "sys_up_time")
    )


_START_KEYS, _END_KEYS = _time_keys("start"), _time_keys("end")


def _times(raw: dict[str, Any], ctx: PacketContext, export_ms: int) -> tuple[int | None, int | None]:
    return _time(raw, ctx, export_ms, _START_KEYS), _time(raw, ctx, export_ms, _END_KEYS)


def _time(raw: dict[str, Any], ctx: PacketContext, export_ms: int, keys: tuple[str, ...]) -> int | None:
    """Epoch milliseconds of the flow start/end from whichever encoding the exporter used."""
    millis, seconds, micros, nanos, delta_micros, uptime = keys
    value = raw.get(millis)
    if isinstance(value, int):
        return value
    value = raw.get(seconds)
    if isinstance(value, int):
        return value * 1000
    for key in (micros, nanos):
        value = raw.get(key)
        if isinstance(value, int):  # NTP timestamp: seconds since 1900 . 2^-32 fractions
            return ((value >> 32) - _NTP_EPOCH_OFFSET) * 1000 + ((value & 0xFFFFFFFF) * 1000 >> 32)
    value = raw.get(delta_micros)
    if isinstance(value, int):
        return export_ms - value // 1000
    value = raw.get(uptime)
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
