"""Beaconing: one host connecting to one destination at a near-constant interval, many times.

Inter-arrival times need each connection's start time per (source, destination) pair, which the
store contract offers as a ``histogram`` of the pair's flows at ``resolution`` seconds: a bucket
key is a start time, only non-empty buckets come back, so the cost is proportional to the pair's
connections, not to the look-back, and it is the same call on SQLite and Elasticsearch (a search
would move whole documents for nothing). Records cut by the flow meter's active timeout are
excluded, so a long-lived connection exported every 300 s is not mistaken for a 300 s beacon.

Candidates are narrowed with aggregations first: destinations with enough flows and few distinct
sources (a destination half the office talks to is a shared service, not a C2 server), then the
sources of each, most repetitions first, capped at ``max_pairs`` per run. Regularity is judged on
the median gap, the MAD of the gaps relative to it (jitter), and the share of gaps on the beat.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from collector.anomaly.base import Detector, Finding, RunContext, Scope
from collector.anomaly.netclass import is_internal_ip
from collector.anomaly.settings import BeaconParams, DetectorParams
from collector.anomaly.state import StateTx
from collector.anomaly.stats import periodicity
from collector.store.base import Aggregation, Not, Query, Term
from soc_common.ecs import iso, parse_ts


class BeaconDetector(Detector):
    name = "beacon"

    def window_seconds(self, params: DetectorParams) -> float:
        assert isinstance(params, BeaconParams)
        return params.interval

    def windows(
        self, ctx: RunContext, params: DetectorParams, checkpoint: datetime | None
    ) -> list[tuple[datetime, datetime]]:
        """Only the newest closed window: each run looks back ``lookback`` anyway, older ones add nothing."""
        return super().windows(ctx, params, checkpoint)[-1:]

    def detect(self, ctx: RunContext, scope: Scope, start: datetime, end: datetime, tx: StateTx) -> list[Finding]:
        p = scope.params
        assert isinstance(p, BeaconParams)
        since = end - timedelta(seconds=p.lookback)
        base = (ctx.flows(), *scope.filters(), Not(Term("event.reason", "active_timeout")))
        if p.external_only:
            base = (*base, *ctx.not_internal_destination())
        pairs: list[tuple[int, str, str]] = []
        for dst in ctx.terms(base, since, end, "destination.ip", p.max_pairs * 5, "distinct", "source.ip"):
            ip = str(dst.key)
            if dst.count < p.min_connections or int(dst.value or 0) > p.max_prevalence:
                continue
            if p.external_only and is_internal_ip(ip):
                continue
            for src in ctx.terms((*base, Term("destination.ip", ip)), since, end, "source.ip", p.max_prevalence):
                if src.count >= p.min_connections:
                    pairs.append((src.count, str(src.key), ip))
        pairs.sort(key=lambda t: (-t[0], t[1], t[2]))
        findings = []
        for _count, source, destination in pairs[: p.max_pairs]:
            pair_filters = (*base, Term("source.ip", source), Term("destination.ip", destination))
            buckets = ctx.store.aggregate(
                Query(pair_filters, since, end), Aggregation("histogram", interval_seconds=p.resolution)
            )
            times = [b.key.timestamp() for b in buckets if b.count > 0]
            shape = periodicity(times, p.tolerance)
            if (
                shape is None
                or shape.count < p.min_connections
                or shape.period < p.min_period
                or shape.relative_jitter > p.max_relative_jitter
                or shape.regular_fraction < p.min_regular_fraction
            ):
                continue
            alerted_key = f"alerted:{scope.label}:{source}|{destination}"
            last = tx.kv.get(alerted_key) or ctx.state.get(self.name, alerted_key)
            if last is not None and parse_ts(last) > end - timedelta(seconds=p.realert_after):
                continue
            tx.put(alerted_key, iso(end))
            ports = ctx.terms(pair_filters, since, end, "destination.port", 3)
            tls = (*scope.filters(), Term("event.dataset", "network_traffic.tls"), *pair_filters[-2:])
            names = ctx.terms(tls, since, end, "tls.client.server_name", 3)
            port = ports[0].key if ports else None
            findings.append(
                Finding(
                    rule="periodic",
                    title=(
                        f"Kết nối định kỳ / Beaconing {source} -> {destination}:{port} every "
                        f"{shape.period:.0f}s ({shape.count}x)"
                    ),
                    severity="high",
                    group={"source.ip": source, "destination.ip": destination},
                    timestamp=datetime.fromtimestamp(min(times), tz=start.tzinfo),
                    window_start=since,
                    window_end=end,
                    explanation={
                        "detector": self.name,
                        "window": {"start": iso(since), "end": iso(end)},
                        "observed": {
                            "connections": shape.count,
                            "period_s": round(shape.period, 2),
                            "jitter_s": round(shape.jitter, 2),
                            "regular_fraction": round(shape.regular_fraction, 3),
                        },
                        "baseline": {
                            "min_connections": p.min_connections,
                            "max_relative_jitter": p.max_relative_jitter,
                            "min_regular_fraction": p.min_regular_fraction,
                        },
                        "score": round(1.0 - shape.relative_jitter / p.max_relative_jitter, 3),
                        "destination_ports": [b.key for b in ports],
                        "server_names": [b.key for b in names],
                        "resolution_s": p.resolution,
                    },
                    evidence=pair_filters,
                    tactics=("command_and_control",),
                    techniques=("T1071", "T1573"),
                    source_ip=source,
                    destination_ip=destination,
                    site=scope.site,
                )
            )
        return findings
