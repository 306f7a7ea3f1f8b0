"""Zone policy: flows between zones that must stay separate, and hosts seen in both of them.

The party WAN must be physically separated from the Internet, so a single flow between them is a
breach (dual-homed PC, rogue 4G modem, misrouted link). "Internet" is the configured external zone,
or - where the zone plan has no catch-all - any destination without a zone whose address is
public (see :mod:`collector.anomaly.netclass`). One alert per source host per window lists the
destinations it reached. A host name (or agent) reporting from both zones of a forbidden pair in
one window is flagged too: that is what a dual-homed machine looks like from its own events.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from collector.anomaly.base import Detector, Finding, RunContext, Scope, Window, span, windows_at
from collector.anomaly.netclass import is_internal_ip
from collector.anomaly.settings import DetectorParams, ZonePolicyParams, ZonePolicyRule
from collector.anomaly.state import StateTx
from collector.store.base import Filter, Not, Term
from soc_common.ecs import iso


def _allowed(ip: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr.version == n.version and addr in n for n in networks)


@dataclass(frozen=True)
class _Direction:
    """One forbidden direction and the filters selecting its flows."""

    source_zone: str
    destination_zone: str
    base: tuple[Filter, ...]
    public_counts: bool  # unzoned public destinations count as the destination zone
    source_external: bool


class ZonePolicyDetector(Detector):
    name = "zone_policy"

    def window_seconds(self, params: DetectorParams) -> float:
        assert isinstance(params, ZonePolicyParams)
        return params.window

    def _destination_filters(self, ctx: RunContext, zone: str) -> tuple[tuple[Filter, ...], bool]:
        """Filters selecting flows into ``zone``; True when public unzoned addresses count as that zone."""
        if zone in ctx.zones.external:
            return ctx.not_internal_destination(), True
        return (Term("soc.destination_zone", zone),), False

    def _directions(self, ctx: RunContext, scope: Scope, p: ZonePolicyParams) -> list[_Direction]:
        out: list[_Direction] = []
        for rule in p.forbidden:
            pairs = [(rule.source_zone, rule.destination_zone)]
            if rule.both_directions:
                pairs.append((rule.destination_zone, rule.source_zone))
            for src_zone, dst_zone in pairs:
                dst_filters, public_counts = self._destination_filters(ctx, dst_zone)
                src_external = src_zone in ctx.zones.external
                src_filters: tuple[Filter, ...] = (
                    (Not(Term("soc.source_zone", sorted(ctx.zones.internal))),)
                    if src_external and ctx.zones.internal
                    else (Term("soc.source_zone", src_zone),)
                )
                base = (ctx.flows(), *scope.filters(), *src_filters, *dst_filters)
                out.append(_Direction(src_zone, dst_zone, base, public_counts, src_external))
        return out

    def hot_windows(self, ctx: RunContext, scope: Scope, windows: Sequence[Window]) -> list[Window]:
        """Windows with any flow in a forbidden direction, or events of a host seen in both zones of a
        pair over the whole range (their distinct zones per window, together, bound each host's)."""
        p = scope.params
        assert isinstance(p, ZonePolicyParams)
        start, end, step = span(windows)
        hot: set[datetime] = set()
        for direction in self._directions(ctx, scope, p):
            hot |= set(ctx.histogram(direction.base, start, end, step))
        for rule in p.forbidden:
            filters = (*scope.filters(), Term("soc.zone", [rule.source_zone, rule.destination_zone]))
            hosts = ctx.terms(filters, start, end, "host.name", 10_000, "distinct", "soc.zone")
            candidates = [b.key for b in hosts if int(b.value or 0) >= 2]
            if candidates:
                per_window = ctx.histogram(
                    (*filters, Term("host.name", candidates)), start, end, step, "distinct", "soc.zone"
                )
                hot |= {at for at, b in per_window.items() if int(b.value or 0) >= 2}
        return windows_at(windows, hot)

    def detect(self, ctx: RunContext, scope: Scope, start: datetime, end: datetime, tx: StateTx) -> list[Finding]:
        p = scope.params
        assert isinstance(p, ZonePolicyParams)
        allowed = [ipaddress.ip_network(c, strict=False) for c in p.allow_destinations]
        findings: list[Finding] = []
        for direction in self._directions(ctx, scope, p):
            src_zone, dst_zone, base = direction.source_zone, direction.destination_zone, direction.base
            public_counts, src_external = direction.public_counts, direction.source_external
            by_source: dict[str, list[tuple[str, int]]] = defaultdict(list)
            for dst in ctx.terms(base, start, end, "destination.ip", p.max_destinations):
                ip = str(dst.key)
                if (public_counts and is_internal_ip(ip)) or _allowed(ip, allowed):
                    continue
                for src in ctx.terms((*base, Term("destination.ip", ip)), start, end, "source.ip", p.max_destinations):
                    if src_external and is_internal_ip(str(src.key)):
                        continue
                    by_source[str(src.key)].append((ip, src.count))
            for source, dests in sorted(by_source.items()):
                dest_ips = [d for d, _ in dests]
                ports = ctx.terms(
                    (*base, Term("source.ip", source), Term("destination.ip", dest_ips)),
                    start,
                    end,
                    "destination.port",
                    20,
                )
                flows = sum(n for _, n in dests)
                findings.append(
                    Finding(
                        rule="forbidden_flow",
                        title=f"Vi phạm phân vùng / Zone policy breach: {src_zone} -> {dst_zone} ({source})",
                        severity="critical",
                        group={"source.ip": source, "from": src_zone, "to": dst_zone},
                        timestamp=start,
                        window_start=start,
                        window_end=end,
                        explanation={
                            "detector": self.name,
                            "window": {"start": iso(start), "end": iso(end)},
                            "policy": f"{src_zone} must not reach {dst_zone}",
                            "baseline": "policy: 0 flows allowed",
                            "observed": flows,
                            "score": float(flows),
                            "destinations": [{"ip": d, "flows": n} for d, n in dests[:50]],
                            "destination_ports": [b.key for b in ports],
                            "unzoned_public_counted_as": dst_zone if public_counts else None,
                        },
                        evidence=(*base, Term("source.ip", source), Term("destination.ip", dest_ips)),
                        tactics=("exfiltration", "command_and_control"),
                        techniques=("T1048", "T1071"),
                        source_ip=source,
                        destination_ip=dest_ips[0] if len(dest_ips) == 1 else None,
                        zone=src_zone,
                        site=scope.site,
                    )
                )
        findings += self._dual_homed(ctx, scope, p.forbidden, start, end)
        return findings

    def _dual_homed(
        self, ctx: RunContext, scope: Scope, rules: list[ZonePolicyRule], start: datetime, end: datetime
    ) -> list[Finding]:
        findings = []
        for rule in rules:
            pair = [rule.source_zone, rule.destination_zone]
            filters = (*scope.filters(), Term("soc.zone", pair))
            for b in ctx.terms(filters, start, end, "host.name", 10_000, "distinct", "soc.zone"):
                if int(b.value or 0) < 2:
                    continue
                host = str(b.key)
                findings.append(
                    Finding(
                        rule="dual_homed",
                        title=f"Máy ở hai vùng / Host seen in both {pair[0]} and {pair[1]}: {host}",
                        severity="critical",
                        group={"host.name": host, "zones": "+".join(sorted(pair))},
                        timestamp=start,
                        window_start=start,
                        window_end=end,
                        explanation={
                            "detector": self.name,
                            "window": {"start": iso(start), "end": iso(end)},
                            "policy": f"{pair[0]} and {pair[1]} must be separate",
                            "baseline": "policy: one zone per host",
                            "observed": int(b.value or 0),
                            "score": float(b.value or 0),
                            "events": b.count,
                        },
                        evidence=(*filters, Term("host.name", host)),
                        tactics=("exfiltration",),
                        techniques=("T1048",),
                        host_name=host,
                        site=scope.site,
                    )
                )
        return findings
