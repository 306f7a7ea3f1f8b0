"""Decoded flow records -> ECS ``netflow.flow`` events.

``event.id`` comes from the record's place in the export stream (exporter, version, domain,
sequence number, export time, set and record position): an exporter re-sending the same packet
produces duplicates the store drops, while an exporter restart (same sequence numbers, new
export time) still produces new events.

Fixed-length templates (nearly all of them) are built by a loop compiled for the template's shape
(:mod:`collector.netflow.compiler`); the generic per-field builder below serves variable-length
templates and is the reference the compiled builders are tested against.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from agent.flows.events import iso_ts
from collector.netflow import eventparts as parts
from collector.netflow.compiler import DATASET, UPTIME_HEADER, UPTIME_INIT, UPTIME_NONE, Builder, compile_builder
from collector.netflow.decoder import PacketContext, RecordBatch
from collector.netflow.fields import Kind, convert
from collector.netflow.templates import Template
from soc_common.ecs import ECS_VERSION, Event

__all__ = ["DATASET", "batch_events"]

#: the per-record suffix of the event-id hash input, for the record positions a set usually has
_INDEX_BYTES = tuple(b"%d\x1f" % i for i in range(2048))
_BUILDERS: dict[tuple[Any, ...], Builder] = {}  # (version, fields, uptime mode) -> builder, across refreshes
_MAX_BUILDERS = 1024  # an exporter cycling through endless template shapes cannot grow it


def batch_events(batch: RecordBatch, *, compiled: bool = True) -> list[Event]:
    """One event per record of one data set.

    Hot path (every flow of every exporter): what is the same for the whole set (exporter object,
    the event-id hash prefix, the uptime anchor, the sampling interval) is computed once here and
    handed to the template's compiled builder. ``compiled=False`` forces the generic builder.
    """
    ctx, template, records = batch.context, batch.template, batch.records
    if not records:
        return []
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
    if not compiled or template.record_struct is None:
        return _generic_events(batch, prefix, export_ms, exporter_info)
    init = ctx.options.get("system_init_ms")
    mode = UPTIME_HEADER if ctx.uptime_ms is not None else UPTIME_NONE if init is None else UPTIME_INIT
    build = template.builders.get(mode) or _builder(template, mode)
    if build is None:
        return _generic_events(batch, prefix, export_ms, exporter_info)
    parts.trim_caches()
    ids = _INDEX_BYTES if len(records) <= len(_INDEX_BYTES) else [b"%d\x1f" % i for i in range(len(records))]
    return build(
        records,
        ids,
        prefix.copy,
        exporter_info,
        export_ms,
        parts.ms_text(export_ms),
        ctx.uptime_ms,
        init,
        export_ms + parts.DAY_MS if init is not None else 0,
        ctx.options.get("sampling_interval"),
        ctx.exporter,
    )


class _CompileBudget:
    """Compiling a template shape costs ~1 ms; an exporter (or a spoofer) sending a new template
    shape per packet must not turn that into the receiver's whole CPU. Over budget, data sets are
    built generically (same events, slower) until the bucket refills."""

    def __init__(self, per_second: float, burst: float) -> None:
        self.per_second, self.burst = per_second, burst
        self.tokens, self.at = burst, time.monotonic()
        self.refused = 0

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.per_second)
        self.at = now
        if self.tokens < 1:
            self.refused += 1
            return False
        self.tokens -= 1
        return True


COMPILE_BUDGET = _CompileBudget(per_second=20, burst=200)


def _builder(template: Template, mode: int) -> Builder | None:
    """The compiled builder for this template shape (shared across refreshes), or None over budget."""
    key = (template.version, template.fields, mode)
    build = _BUILDERS.get(key)
    if build is None:
        if not COMPILE_BUDGET.take():
            return None
        if len(_BUILDERS) >= _MAX_BUILDERS:
            _BUILDERS.clear()
        build = _BUILDERS[key] = compile_builder(template, mode)
    template.builders[mode] = build
    return build


def _generic_events(batch: RecordBatch, prefix: Any, export_ms: int, exporter_info: dict[str, Any]) -> list[Event]:
    """The per-field builder: a dict per record, then the ECS fields looked up by name."""
    ctx, template = batch.context, batch.template
    names = template.names
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
        network["transport"] = parts.transport_text(proto)[1]
        if proto in parts.PORTED:
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
        network["tcp_flags"] = parts.flag_names(flags)
    if isinstance(sip, str) and isinstance(dip, str) and isinstance(proto, int) and proto < 256:
        icmp_code = raw.get("icmp_type_code_ipv4", raw.get("icmp_type_code_ipv6"))
        cid = parts.community_id_text(sip, dip, proto, sport, dport, icmp_code)
        if cid is not None:
            network["community_id"] = cid
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
            return ((value >> 32) - parts.NTP_EPOCH_OFFSET) * 1000 + ((value & 0xFFFFFFFF) * 1000 >> 32)
    value = raw.get(delta_micros)
    if isinstance(value, int):
        return export_ms - value // 1000
    value = raw.get(uptime)
    if isinstance(value, int):
        if ctx.uptime_ms is not None:
            return export_ms - (ctx.uptime_ms - value) % parts.WRAP
        init = ctx.options.get("system_init_ms")
        if init is not None:
            when = init + value
            # An uptime that went "negative" and wrapped (softflowd replaying a capture does this)
            # would land ~49 days in the future; read it as the signed offset it was meant as.
            return when - parts.WRAP if when > export_ms + parts.DAY_MS else when
    return None
