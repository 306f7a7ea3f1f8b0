"""DNS: tunnelling (long, random names; many sub-domains under one parent) and NXDOMAIN bursts (DGA).

Names come from one terms aggregation on ``dns.question.name`` per window (bounded by
``max_names``; a truncated read is reported in the explanation), grouped by registered domain
(:mod:`collector.pipeline.domains`). A parent is suspicious when it has many distinct sub-domains or
several long/high-entropy names; the clients behind it are then found with one more aggregation.
NXDOMAIN bursts are distinct failed names per client, which is what a DGA walking its list does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from collector.anomaly.base import Detector, Finding, RunContext, Scope, Window, span, windows_at
from collector.anomaly.settings import DetectorParams, DnsParams
from collector.anomaly.state import StateTx
from collector.anomaly.stats import median, shannon_entropy
from collector.pipeline.domains import DomainSplitter
from collector.store.base import Bucket, Filter, Term
from soc_common.ecs import iso


@dataclass
class _Parent:
    names: list[str] = field(default_factory=list)
    suspicious: list[str] = field(default_factory=list)
    queries: int = 0
    subdomains: set[str] = field(default_factory=set)


class DnsDetector(Detector):
    name = "dns"

    def window_seconds(self, params: DetectorParams) -> float:
        assert isinstance(params, DnsParams)
        return params.window

    @staticmethod
    def _base(ctx: RunContext, scope: Scope) -> tuple[Filter, ...]:
        return (Term("event.dataset", list(ctx.settings.dns_datasets)), *scope.filters())

    @staticmethod
    def _nx_base(ctx: RunContext, scope: Scope) -> tuple[Filter, ...]:
        return (*DnsDetector._base(ctx, scope), Term("dns.response_code", "NXDOMAIN"))

    @staticmethod
    def _suspicious_parents(p: DnsParams, names: Sequence[Bucket]) -> dict[str, _Parent]:
        """Registered domains of ``names`` with many sub-domains or several long/random names."""
        splitter = DomainSplitter(p.extra_suffixes)
        allow = {d.lower().strip(".") for d in p.allow_domains}
        parents: dict[str, _Parent] = defaultdict(_Parent)
        for b in names:
            name = str(b.key)
            sub, parent = splitter.split(name)
            if not sub or parent in allow:
                continue
            entry = parents[parent]
            entry.names.append(name)
            entry.queries += b.count
            entry.subdomains.add(sub)
            longest = max((len(label) for label in sub.split(".")), default=0)
            random = len(sub) >= p.entropy_min_length and shannon_entropy(sub.replace(".", "")) >= p.entropy
            if len(name) >= p.long_name or longest >= p.long_label or random:
                entry.suspicious.append(name)
        return {
            parent: entry
            for parent, entry in sorted(parents.items())
            if len(entry.subdomains) >= p.unique_subdomains or len(entry.suspicious) >= p.min_suspicious_names
        }

    def hot_windows(self, ctx: RunContext, scope: Scope, windows: Sequence[Window]) -> list[Window]:
        """Windows holding names of a parent that is suspicious over the whole range, or NXDOMAIN
        answers of clients at or above the burst threshold over the range (their distinct failed
        names per window, together, bound each client's). A truncated name list gives no bound."""
        p = scope.params
        assert isinstance(p, DnsParams)
        start, end, step = span(windows)
        base = self._base(ctx, scope)
        names = ctx.terms(base, start, end, "dns.question.name", p.max_names)
        if len(names) >= p.max_names:
            return list(windows)
        hot: set[datetime] = set()
        suspicious = [n for entry in self._suspicious_parents(p, names).values() for n in entry.names]
        for i in range(0, len(suspicious), 1000):
            hot |= set(ctx.histogram((*base, Term("dns.question.name", suspicious[i : i + 1000])), start, end, step))
        nx_base = self._nx_base(ctx, scope)
        clients = ctx.terms(nx_base, start, end, "source.ip", 10_000, "distinct", "dns.question.name")
        bursty = [b.key for b in clients if int(b.value or 0) >= p.nxdomain_names]
        if bursty:
            per_window = ctx.histogram(
                (*nx_base, Term("source.ip", bursty)), start, end, step, "distinct", "dns.question.name"
            )
            hot |= {at for at, b in per_window.items() if int(b.value or 0) >= p.nxdomain_names}
        return windows_at(windows, hot)

    def detect(self, ctx: RunContext, scope: Scope, start: datetime, end: datetime, tx: StateTx) -> list[Finding]:
        p = scope.params
        assert isinstance(p, DnsParams)
        names = ctx.terms(self._base(ctx, scope), start, end, "dns.question.name", p.max_names)
        truncated = len(names) >= p.max_names
        findings = [
            self._tunnel(ctx, scope, p, parent, entry, start, end, truncated)
            for parent, entry in self._suspicious_parents(p, names).items()
        ]
        findings += self._nxdomain(ctx, scope, p, start, end)
        return findings

    def _tunnel(
        self,
        ctx: RunContext,
        scope: Scope,
        p: DnsParams,
        parent: str,
        entry: _Parent,
        start: datetime,
        end: datetime,
        truncated: bool,
    ) -> Finding:
        base = self._base(ctx, scope)
        sample = entry.names[:1000]  # the clients behind the parent, found through a bounded set of its names
        clients = ctx.terms((*base, Term("dns.question.name", sample)), start, end, "source.ip", 20)
        resolvers = ctx.terms((*base, Term("dns.question.name", sample)), start, end, "destination.ip", 5)
        lengths = [len(n) for n in entry.names]
        entropies = [shannon_entropy(s.replace(".", "")) for s in entry.subdomains]
        score = max(len(entry.subdomains) / p.unique_subdomains, len(entry.suspicious) / p.min_suspicious_names)
        client = str(clients[0].key) if clients else None
        return Finding(
            rule="tunnel",
            title=f"Nghi đường hầm DNS / Possible DNS tunnelling under {parent} ({len(entry.subdomains)} sub-domains)",
            severity="high",
            group={"registered_domain": parent},
            timestamp=start,
            window_start=start,
            window_end=end,
            explanation={
                "detector": self.name,
                "window": {"start": iso(start), "end": iso(end)},
                "registered_domain": parent,
                "observed": {
                    "unique_subdomains": len(entry.subdomains),
                    "suspicious_names": len(entry.suspicious),
                    "queries": entry.queries,
                    "median_length": median(lengths),
                    "median_entropy": round(median(entropies), 2),
                },
                "baseline": {
                    "unique_subdomains": p.unique_subdomains,
                    "suspicious_names": p.min_suspicious_names,
                    "long_name": p.long_name,
                    "long_label": p.long_label,
                    "entropy": p.entropy,
                },
                "score": round(score, 2),
                "examples": entry.suspicious[:5] or entry.names[:5],
                "clients": [{"ip": c.key, "events": c.count} for c in clients],
                "resolvers": [r.key for r in resolvers],
                "names_truncated": truncated,
            },
            evidence=(*base, Term("dns.question.name", sample[:50])),
            tactics=("command_and_control", "exfiltration"),
            techniques=("T1071.004", "T1048.003"),
            source_ip=client,
            site=scope.site,
        )

    def _nxdomain(self, ctx: RunContext, scope: Scope, p: DnsParams, start: datetime, end: datetime) -> list[Finding]:
        base = self._nx_base(ctx, scope)
        findings = []
        for b in ctx.terms(base, start, end, "source.ip", 10_000, "distinct", "dns.question.name"):
            distinct = int(b.value or 0)
            if distinct < p.nxdomain_names:
                continue
            source = str(b.key)
            examples = ctx.terms((*base, Term("source.ip", source)), start, end, "dns.question.name", 5)
            findings.append(
                Finding(
                    rule="nxdomain_burst",
                    title=f"Nhiều tên miền không tồn tại / NXDOMAIN burst from {source} ({distinct} names)",
                    severity="medium",
                    group={"source.ip": source},
                    timestamp=start,
                    window_start=start,
                    window_end=end,
                    explanation={
                        "detector": self.name,
                        "window": {"start": iso(start), "end": iso(end)},
                        "observed": distinct,
                        "baseline": {"threshold": p.nxdomain_names},
                        "score": round(distinct / p.nxdomain_names, 2),
                        "responses": b.count,
                        "examples": [e.key for e in examples],
                    },
                    evidence=(*base, Term("source.ip", source)),
                    tactics=("command_and_control",),
                    techniques=("T1568.002",),
                    source_ip=source,
                    site=scope.site,
                )
            )
        return findings
