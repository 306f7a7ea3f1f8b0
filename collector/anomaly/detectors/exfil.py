"""Exfiltration: outbound bytes to external destinations far above the host's own hourly baseline,
and large uploads to an external address the host has never talked to before.

Per hour: external outbound bytes per source (one aggregation), judged against that host's
seasonal series; hosts above the absolute floors get a per-destination breakdown (private
addresses without a zone are dropped there). "First seen" asks the store itself whether the pair
had any flow in ``first_seen_lookback`` before the window, so no per-host destination set has to
be kept in state, and it only runs for the rare large transfers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from collector.anomaly.base import Detector, Finding, RunContext, Scope, Window
from collector.anomaly.netclass import is_internal_ip
from collector.anomaly.series import SeriesBook, observe
from collector.anomaly.settings import ExfilParams
from collector.anomaly.state import StateTx
from collector.anomaly.stats import Baseline
from collector.store.base import Query, Term
from soc_common.ecs import iso


class ExfilDetector(Detector):
    name = "exfil"
    learns_from_history = True

    def detect(self, ctx: RunContext, scope: Scope, start: datetime, end: datetime, tx: StateTx) -> list[Finding]:
        return self.detect_range(ctx, scope, [(start, end)], tx)

    def detect_range(self, ctx: RunContext, scope: Scope, windows: Sequence[Window], tx: StateTx) -> list[Finding]:
        p = scope.params
        assert isinstance(p, ExfilParams)
        base = (ctx.flows(), *scope.filters(), *ctx.not_internal_destination())
        series = observe(ctx, base, windows, "source.ip", p.max_hosts, "source.bytes")
        book = SeriesBook(ctx, self.name, f"out:{scope.label}:", tx, p.weeks_kept)
        findings: list[Finding] = []
        floor = min(p.min_bytes, p.first_seen_bytes)
        for (start, end), totals in zip(windows, series, strict=True):
            for host in sorted(set(book.entities()) | set(totals)):
                total = totals.get(host, 0.0)
                baseline = book.judge(host, start, p.min_samples, 1.0, p.learning_days)
                if total >= floor:
                    findings += self._destinations(ctx, scope, p, host, baseline, start, end)
                book.add(host, start, total)
        return findings

    def _destinations(
        self,
        ctx: RunContext,
        scope: Scope,
        p: ExfilParams,
        host: str,
        baseline: Baseline | None,
        start: datetime,
        end: datetime,
    ) -> list[Finding]:
        flows = (ctx.flows(), *scope.filters(), Term("source.ip", host))
        per_dest = ctx.terms(
            (*flows, *ctx.not_internal_destination()), start, end, "destination.ip", 50, "sum", "source.bytes"
        )
        host_learned = self.learned(ctx, p, (ctx.flows(), Term("source.ip", host)), start)
        out = []
        for b in per_dest:
            dest, sent = str(b.key), float(b.value or 0.0)
            if is_internal_ip(dest):
                continue
            score = baseline.score(sent) if baseline is not None else None
            spike = (
                baseline is not None
                and score is not None
                and sent >= p.min_bytes
                and score >= p.score
                and sent >= p.ratio * max(baseline.median, 1.0)
            )
            first_seen = False
            if sent >= p.first_seen_bytes and host_learned:
                before = Query(
                    (*flows, Term("destination.ip", dest)), start - timedelta(seconds=p.first_seen_lookback), start
                )
                first_seen = ctx.store.count(before) == 0
            if not (spike or first_seen):
                continue
            what = "far above baseline" if spike else "to a first-seen destination"
            out.append(
                Finding(
                    rule="upload_spike" if spike else "first_seen_upload",
                    title=f"Tải lên bất thường / Large upload {what}: {host} -> {dest} ({sent / 1048576:.1f} MiB)",
                    severity="high",
                    group={"source.ip": host, "destination.ip": dest},
                    timestamp=start,
                    window_start=start,
                    window_end=end,
                    explanation={
                        "detector": self.name,
                        "window": {"start": iso(start), "end": iso(end)},
                        "observed": {"bytes": sent, "flows": b.count},
                        "baseline": baseline.as_dict() if baseline is not None else "learning",
                        "score": round(score, 2) if score is not None else None,
                        "first_seen_destination": first_seen,
                        "first_seen_lookback_days": round(p.first_seen_lookback / 86400, 1),
                        "thresholds": {
                            "score": p.score,
                            "ratio": p.ratio,
                            "min_bytes": p.min_bytes,
                            "first_seen_bytes": p.first_seen_bytes,
                        },
                    },
                    evidence=(*flows, Term("destination.ip", dest)),
                    tactics=("exfiltration",),
                    techniques=("T1048", "T1041"),
                    source_ip=host,
                    destination_ip=dest,
                    site=scope.site,
                )
            )
        return out
