"""Fan-out: one source reaching many distinct hosts or ports in a short window.

Three signals from two aggregations per window (distinct ``destination.ip`` and distinct
``destination.port`` per ``source.ip``, plus distinct hosts on administration ports): a host sweep,
a port scan, and lateral-movement-like spread over SMB/RDP/WinRM/SSH. Sources that fan out as a
habit (inventory scanners, monitoring) learn their own level: once seen above the threshold in
``habit_min_windows`` windows, they alert only above ``habit_multiplier`` x their median.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from collector.anomaly.base import Detector, Finding, RunContext, Scope, Window, span, windows_at
from collector.anomaly.settings import DetectorParams, FanoutParams
from collector.anomaly.state import StateTx
from collector.anomaly.stats import median
from collector.store.base import Filter, Term
from soc_common.ecs import iso

_SIGNALS = {
    # signal: (metric field, threshold attribute, title, tactic, technique)
    "host_sweep": ("destination.ip", "distinct_hosts", "Quét dải địa chỉ / Host sweep", "discovery", "T1018"),
    "port_scan": ("destination.port", "distinct_ports", "Quét cổng / Port scan", "discovery", "T1046"),
    "lateral_spread": (
        "destination.ip",
        "lateral_hosts",
        "Lan truyền ngang / Lateral spread on admin ports",
        "lateral_movement",
        "T1021",
    ),
}


class FanoutDetector(Detector):
    name = "fanout"

    def window_seconds(self, params: DetectorParams) -> float:
        assert isinstance(params, FanoutParams)
        return params.window

    @staticmethod
    def _signal_filters(ctx: RunContext, scope: Scope, p: FanoutParams, signal: str) -> tuple[Filter, ...]:
        """Sweeps and spread count internal destinations only (where zones are configured): a browser
        reaches dozens of CDN addresses in minutes, which is not a sweep."""
        base: tuple[Filter, ...] = (ctx.flows(), *scope.filters())
        internal = ctx.to_internal_zone()
        if signal != "port_scan" and internal is not None:
            base = (*base, internal)
        return (*base, Term("destination.port", p.admin_ports)) if signal == "lateral_spread" else base

    def hot_windows(self, ctx: RunContext, scope: Scope, windows: Sequence[Window]) -> list[Window]:
        """Windows where some source may reach a threshold: sources at or above it over the whole range
        are the only candidates, and their distinct count per window, taken together, bounds each one's."""
        p = scope.params
        assert isinstance(p, FanoutParams)
        start, end, step = span(windows)
        hot: set[datetime] = set()
        for signal, (metric_field, attr, *_) in _SIGNALS.items():
            threshold = int(getattr(p, attr))
            filters = self._signal_filters(ctx, scope, p, signal)
            sources = ctx.terms(filters, start, end, "source.ip", p.max_sources, "distinct", metric_field)
            if len(sources) >= p.max_sources:
                return list(windows)  # truncated: no bound for the sources left out
            candidates = [b.key for b in sources if int(b.value or 0) >= threshold]
            if not candidates:
                continue
            per_window = ctx.histogram(
                (*filters, Term("source.ip", candidates)), start, end, step, "distinct", metric_field
            )
            hot |= {at for at, b in per_window.items() if int(b.value or 0) >= threshold}
        return windows_at(windows, hot)

    def detect(self, ctx: RunContext, scope: Scope, start: datetime, end: datetime, tx: StateTx) -> list[Finding]:
        p = scope.params
        assert isinstance(p, FanoutParams)
        allowed = set(p.allow_sources)
        findings: list[Finding] = []
        for signal, (metric_field, attr, title, tactic, technique) in _SIGNALS.items():
            threshold = int(getattr(p, attr))
            filters = self._signal_filters(ctx, scope, p, signal)
            buckets = ctx.terms(filters, start, end, "source.ip", p.max_sources, "distinct", metric_field)
            for b in buckets:
                observed = int(b.value or 0)
                if observed < threshold or str(b.key) in allowed:
                    continue
                source = str(b.key)
                habit_key = f"habit:{scope.label}:{signal}:{source}"
                history: list[float] = (
                    ctx.state.get(self.name, habit_key, []) if habit_key not in tx.kv else tx.kv[habit_key]
                )
                habitual = len(history) >= p.habit_min_windows
                typical = median(history) if history else 0.0
                tx.put(habit_key, [*history, float(observed)][-50:])
                if habitual and observed < p.habit_multiplier * typical:
                    continue
                if not self.learned(ctx, p, (ctx.flows(), Term("source.ip", source)), start):
                    continue
                top = ctx.terms(
                    (*filters, Term("source.ip", source)),
                    start,
                    end,
                    "destination.ip",
                    5,
                    "distinct",
                    "destination.port",
                )
                explanation: dict[str, Any] = {
                    "detector": self.name,
                    "signal": signal,
                    "window": {"start": iso(start), "end": iso(end)},
                    "observed": observed,
                    "threshold": threshold,
                    "baseline": {"habitual": habitual, "median": typical, "windows": len(history)},
                    "score": round(observed / threshold, 2),
                    "metric": f"distinct {metric_field} per source.ip",
                    "top_destinations": [{"ip": t.key, "flows": t.count, "ports": int(t.value or 0)} for t in top],
                    "flows": b.count,
                }
                if signal == "lateral_spread":
                    explanation["ports"] = p.admin_ports
                findings.append(
                    Finding(
                        rule=signal,
                        title=f"{title}: {source} -> {observed} distinct {metric_field.split('.')[1]}s",
                        severity="high",
                        group={"source.ip": source},
                        timestamp=start,
                        window_start=start,
                        window_end=end,
                        explanation=explanation,
                        evidence=(*filters, Term("source.ip", source)),
                        tactics=(tactic,),
                        techniques=(technique,),
                        source_ip=source,
                        destination_ip=str(top[0].key) if len(top) == 1 else None,
                        site=scope.site,
                    )
                )
        return findings
