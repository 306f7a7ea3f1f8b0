"""Per-template flow-event builders, generated as Python source once per template shape.

WHY: a template fixes, for every record an exporter sends with it, which element sits at which
position, its length and so its decoded type. Everything the generic builder decides per record
(does the record have a source address, is the protocol a number, which time encoding is used,
which fields need converting) is therefore decided once here, and the generated loop only does
what varies per record: convert addresses, hash the event id and community id, format the times,
and build the event dicts as literals in the exact key order the generic builder produces.

Only fixed-length templates are compiled (their struct decoding fixes every value's type);
variable-length ones keep the generic builder in :mod:`collector.netflow.events`.
"""

from __future__ import annotations

import binascii
import hashlib
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from collector.netflow import eventparts as parts
from collector.netflow.fields import Kind
from collector.netflow.templates import Template
from soc_common.ecs import ECS_VERSION, Event

DATASET = "netflow.flow"

#: build(records, ids, new_hash, exporter_info, export_ms, export_text, uptime, init, init_limit,
#:       sampling, observer_ip) -> events
Builder = Callable[..., list[Event]]

# How a template's sysUpTime-relative times become epoch time; it depends on the packet, not the
# template, so it is part of the compiled builder's key.
UPTIME_NONE, UPTIME_HEADER, UPTIME_INIT = 0, 1, 2

_INT_CODES = (1, 2, 4, 8)
_NAMESPACE: dict[str, Any] = {
    "_IP4": parts.IP4_TEXT,
    "_IP6": parts.IP6_TEXT,
    "_ntoa": socket.inet_ntoa,
    "_ntop": socket.inet_ntop,
    "_AF6": socket.AF_INET6,
    "_ms_text": parts.ms_text,
    "_SEC": parts.SECOND_TEXT,
    "_FRAC": parts.FRACTION,
    "_FLAGS": parts.FLAGS,
    "_PROTO": parts.PROTOCOL_TEXT,
    "_proto_text": parts.transport_text,
    "_PORTED": parts.PORTED,
    "_PACK_V4": parts.PACK_V4,
    "_PACK_V6": parts.PACK_V6,
    "_CID": parts.COMMUNITY_IDS,
    "_sha1": hashlib.sha1,
    "_b64": binascii.b2a_base64,
    "_cid_text": parts.community_id_text,
    "_NTP": parts.NTP_EPOCH_OFFSET,
    "_WRAP": parts.WRAP,
    "_ECS": ECS_VERSION,
    "_DATASET": DATASET,
}


@dataclass(frozen=True, slots=True)
class _Value:
    """One element's converted value in the generated loop."""

    var: str  # expression (a local name) holding it
    is_int: bool  # its type: int, else str
    raw: str  # the local holding the undecoded value
    kind: Kind
    length: int


def compile_builder(template: Template, uptime_mode: int) -> Builder:
    """A builder for data sets of ``template`` (fixed-length only)."""
    if template.record_struct is None:
        raise ValueError("variable-length templates are built generically")
    source = _Source(template, uptime_mode).render()
    namespace = dict(_NAMESPACE)
    exec(compile(source, f"<netflow template {template.template_id}>", "exec"), namespace)
    build: Builder = namespace["build"]
    build.__doc__ = source  # what ran, for whoever debugs a builder
    return build


class _Source:
    """Writes the source of one builder; ``lines`` is the loop body, indented by the renderer."""

    def __init__(self, template: Template, uptime_mode: int) -> None:
        self.uptime_mode = uptime_mode
        self.lines: list[str] = []
        self.count = len(template.names)
        self.values: dict[str, _Value] = {}
        lengths = [spec.length for spec in template.fields if not spec.enterprise]
        for pos, (name, kind, length) in enumerate(zip(template.names, template.kinds, lengths, strict=True)):
            self.values[name] = self._convert(pos, kind, length)  # a repeated name: the last one wins

    def _convert(self, pos: int, kind: Kind, length: int) -> _Value:
        raw = f"v{pos}"
        if kind is Kind.UNSIGNED:
            if length in _INT_CODES:
                return _Value(raw, True, raw, kind, length)
            expr, is_int = (f"int.from_bytes({raw}, 'big')", True) if length <= 8 else (f"{raw}.hex()", False)
        elif kind is Kind.IPV4 and length == 4:
            expr, is_int = f"_IP4.get({raw}) or _IP4.setdefault({raw}, _ntoa({raw}))", False
        elif kind is Kind.IPV6 and length == 16:
            expr, is_int = f"_IP6.get({raw}) or _IP6.setdefault({raw}, _ntop(_AF6, {raw}))", False
        elif kind is Kind.MAC and length == 6:
            expr, is_int = f"{raw}.hex('-').upper()", False
        elif kind is Kind.STRING:
            expr, is_int = f"{raw}.rstrip(b'\\x00').decode('utf-8', 'replace')", False
        else:
            expr, is_int = f"{raw}.hex()", False
        var = f"c{pos}"
        self.lines.append(f"{var} = {expr}")
        return _Value(var, is_int, raw, kind, length)

    # -- helpers over the template's values ------------------------------------------------------
    def get(self, name: str) -> _Value | None:
        return self.values.get(name)

    def int_value(self, name: str) -> _Value | None:
        value = self.values.get(name)
        return value if value is not None and value.is_int else None

    def first_of(self, *names: str) -> _Value | None:
        """``raw.get(a) or raw.get(b)`` for address fields (always text): an empty text falls through."""
        found = None
        for name in names:
            found = self.values.get(name)
            if found is not None and found.length > 0:  # a non-empty value: ``or`` stops here
                return found
        return found

    def local(self, name: str, expr: str) -> str:
        self.lines.append(f"{name} = {expr}")
        return name

    # -- the record ---------------------------------------------------------------------------------
    def render(self) -> str:
        # Each part assigns its local (ei, nf, src/dst/net, ob); the event dict is then one literal.
        self._event_info()
        self._netflow()
        self._endpoints()
        self._observer()
        self.lines.append(
            "append({'@timestamp': end_text, 'ecs': {'version': _ECS}, 'event': ei, 'observer': ob, "
            "'netflow': nf, 'source': src, 'destination': dst, 'network': net})"
        )
        unpack = ", ".join(f"v{i}" for i in range(self.count)) + ("," if self.count == 1 else "")
        head = [
            "def build(records, ids, new_hash, exporter_info, export_ms, export_text, uptime, init, init_limit, "
            "sampling, observer_ip):",
            "    out = []",
            "    append = out.append",
            "    for idx, record in zip(ids, records):",
            f"        {unpack} = record" if self.count else "        pass",
        ]
        return "\n".join(head + ["        " + line for line in self.lines] + ["    return out", ""])

    def _time(self, which: str) -> str | None:
        """Expression for the flow's start/end in epoch ms, from the first encoding the template has."""
        for unit in ("milliseconds", "seconds", "microseconds", "nanoseconds", "delta_microseconds"):
            value = self.int_value(f"flow_{which}_{unit}")
            if value is None:
                continue
            v = value.var
            if unit == "milliseconds":
                return v
            if unit == "seconds":
                return f"{v} * 1000"
            if unit == "delta_microseconds":
                return f"export_ms - {v} // 1000"
            return f"(({v} >> 32) - _NTP) * 1000 + (({v} & 0xFFFFFFFF) * 1000 >> 32)"
        value = self.int_value(f"flow_{which}_sys_up_time")
        if value is None or self.uptime_mode == UPTIME_NONE:
            return None
        if self.uptime_mode == UPTIME_HEADER:
            return f"export_ms - (uptime - {value.var}) % _WRAP"
        # An uptime that went "negative" and wrapped would land ~49 days ahead: read it as signed.
        return f"(init + {value.var} - _WRAP) if init + {value.var} > init_limit else (init + {value.var})"

    def _time_text(self, var: str, ms: str) -> None:
        """``ms_text`` inlined: a cached second's text plus the millisecond suffix, else the call."""
        self.lines += [
            f"t = _SEC.get({ms} // 1000)",
            f"{var} = t + _FRAC[{ms} % 1000] if t is not None else _ms_text({ms})",
        ]

    def _event_info(self) -> None:
        start, end = self._time("start"), self._time("end")
        items: list[tuple[str, str, str | None]] = [
            ("id", "h.hexdigest()", None),
            ("kind", "'event'", None),
            ("dataset", "_DATASET", None),
            ("module", "'netflow'", None),
            ("category", "['network']", None),
            ("type", "['connection']", None),
            ("action", "'netflow_flow'", None),
        ]
        self.lines += ["h = new_hash()", "h.update(idx)"]
        if start is not None:
            self.local("start", start)
            self._time_text("start_text", "start")
            items.append(("start", "start_text", None))
        if end is not None:
            self.local("end", end)
            self._time_text("end_text", "end")
            items.append(("end", "end_text", None))
            if start is not None:
                items.append(("duration", "(end - start) * 1000000", "end >= start"))
        else:
            self.local("end_text", "export_text")
        self._dict("ei", items)

    def _netflow(self) -> None:
        items: list[tuple[str, str, str | None]] = [
            (repr(name), value.var, None) for name, value in self.values.items()
        ]
        if "sampling_interval" in self.values:  # the options' interval replaces the record's in place
            items = [
                (key, f"(sampling or {var})" if key == "'sampling_interval'" else var, None) for key, var, _ in items
            ]
            items.append(("'exporter'", "exporter_info", None))
        else:
            items += [("'exporter'", "exporter_info", None), ("'sampling_interval'", "sampling", "sampling")]
        self._dict("nf", items, quoted=True)

    def _observer(self) -> None:
        items: list[tuple[str, str, str | None]] = [("ip", "observer_ip", None), ("type", "'netflow-exporter'", None)]
        for key, name in (("ingress", "ingress_interface"), ("egress", "egress_interface")):
            value = self.int_value(name)
            if value is not None:
                items.append((key, f"{{'interface': {{'id': str({value.var})}}}}", None))
        self._dict("ob", items)

    def _port(self, name: str) -> tuple[str, bool] | None:
        """``_port(raw.get(name))`` as (expression, may be None), or None when it is never a port."""
        value = self.int_value(name)
        if value is None:
            return None
        if value.length <= 2:
            return value.var, False
        return self.local(f"p{value.var}", f"{value.var} if {value.var} < 65536 else None"), True

    def _endpoints(self) -> None:
        sip = self.first_of("source_ipv4_address", "source_ipv6_address")
        dip = self.first_of("destination_ipv4_address", "destination_ipv6_address")
        proto = self.int_value("protocol_identifier")
        sport, dport = self._port("source_transport_port"), self._port("destination_transport_port")
        octets = self.get("octet_delta_count") or self.get("octet_total_count")
        packets = self.get("packet_delta_count") or self.get("packet_total_count")
        flags = self.int_value("tcp_control_bits")
        source: list[tuple[str, str, str | None]] = []
        destination: list[tuple[str, str, str | None]] = []
        network: list[tuple[str, str, str | None]] = []
        if sip is not None:
            source.append(("ip", sip.var, None))
        if dip is not None:
            destination.append(("ip", dip.var, None))
        if proto is not None:
            p = proto.var
            text = f"_PROTO[{p}]" if proto.length == 1 else f"_proto_text({p})"
            self.local("pt", text)
            network += [("iana_number", "pt[0]", None), ("transport", "pt[1]", None)]
            if sport is not None or dport is not None:
                self.local("ported", f"{p} in _PORTED")
            for items, port in ((source, sport), (destination, dport)):
                if port is not None:
                    expr, maybe_none = port
                    items.append(("port", expr, f"ported and {expr} is not None" if maybe_none else "ported"))
        if octets is not None and octets.is_int:
            source.append(("bytes", octets.var, None))
            network.append(("bytes", octets.var, None))
        if packets is not None and packets.is_int:
            source.append(("packets", packets.var, None))
            network.append(("packets", packets.var, None))
        if proto is not None and flags is not None:
            network.append(("tcp_flags", f"list(_FLAGS[{flags.var} & 0xFF])", f"{proto.var} == 6 and {flags.var}"))
        if sip is not None and dip is not None and proto is not None:
            self._community_id(sip, dip, proto, sport, dport)
            network.append(("community_id", "cid", "cid is not None"))
        version = self.get("ip_version")
        if version is not None:
            network.append(("type", f"'ipv6' if {version.var} == 6 else 'ipv4'", None))
        self._dict("src", source)
        self._dict("dst", destination)
        self._dict("net", network)

    def _community_id(
        self, sip: _Value, dip: _Value, proto: _Value, sport: tuple[str, bool] | None, dport: tuple[str, bool] | None
    ) -> None:
        p = proto.var
        icmp = self.get("icmp_type_code_ipv4") or self.get("icmp_type_code_ipv6")
        args = ", ".join(port[0] if port else "None" for port in (sport, dport))
        generic = f"_cid_text({sip.var}, {dip.var}, {p}, {args}, {icmp.var if icmp else 'None'})"
        if proto.length != 1:
            generic = f"{generic} if {p} < 256 else None"
        pack = None
        if sip.kind is dip.kind is Kind.IPV4 and sip.length == dip.length == 4:
            pack = "_PACK_V4"
        elif sip.kind is dip.kind is Kind.IPV6 and sip.length == dip.length == 16:
            pack = "_PACK_V6"
        if pack is None:
            self.local("cid", generic)
            return
        sp, dp = ("0" if port is None else f"({port[0]} or 0)" if port[1] else port[0] for port in (sport, dport))
        s, d = sip.raw, dip.raw
        self.lines += [
            f"if {'ported' if sport or dport else p + ' in _PORTED'}:",
            f"    if {s} < {d} or ({s} == {d} and {sp} <= {dp}):",
            f"        packed = {pack}(0, {s}, {d}, {p}, 0, {sp}, {dp})",
            "    else:",
            f"        packed = {pack}(0, {d}, {s}, {p}, 0, {dp}, {sp})",
            "    cid = _CID.get(packed)",
            "    if cid is None:",
            "        cid = _CID[packed] = '1:' + _b64(_sha1(packed).digest(), newline=False).decode('ascii')",
            "else:",
            f"    cid = {generic}",
        ]

    def _dict(self, var: str, items: list[tuple[str, str, str | None]], *, quoted: bool = False) -> None:
        """Assign a dict with these (key, value, condition) items, keys in this order.

        With at most two distinct conditions every combination is its own literal (the fast
        shape); otherwise the unconditional prefix is a literal and the rest is added in order.
        """

        def literal(chosen: list[tuple[str, str, str | None]]) -> str:
            return "{" + ", ".join(f"{k if quoted else repr(k)}: {v}" for k, v, _ in chosen) + "}"

        conditions = list(dict.fromkeys(c for _, _, c in items if c is not None))
        if len(conditions) <= 2:
            self._branches(var, items, conditions, {}, literal, "")
            return
        first = next(i for i, (_, _, c) in enumerate(items) if c is not None)
        self.lines.append(f"{var} = {literal(items[:first])}")
        for key, value, cond in items[first:]:
            target = f"{var}[{key if quoted else repr(key)}] = {value}"
            self.lines += [f"if {cond}:", f"    {target}"] if cond else [target]

    def _branches(
        self,
        var: str,
        items: list[tuple[str, str, str | None]],
        conditions: list[str],
        decided: dict[str, bool],
        literal: Callable[[list[tuple[str, str, str | None]]], str],
        indent: str,
    ) -> None:
        if len(decided) == len(conditions):
            chosen = [item for item in items if item[2] is None or decided[item[2]]]
            self.lines.append(f"{indent}{var} = {literal(chosen)}")
            return
        cond = conditions[len(decided)]
        self.lines.append(f"{indent}if {cond}:")
        self._branches(var, items, conditions, {**decided, cond: True}, literal, indent + "    ")
        self.lines.append(f"{indent}else:")
        self._branches(var, items, conditions, {**decided, cond: False}, literal, indent + "    ")
