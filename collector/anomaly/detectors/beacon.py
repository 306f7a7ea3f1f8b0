"""Beaconing: one host connecting to one destination at a near-constant interval, many times.

Inter-arrival times need each connection's start time per (source, destination) pair, which the
store contract offers as a ``histogram`` of the pair's flows at ``resolution`` seconds: a bucket
key is a start time, only non-empty buckets come back, so the cost is proportional to the pair's
connections, not to the look-back, and it is the same call on SQLite and Elasticsearch (a search
would move whole documents for nothing). Records cut by the flow meter's active timeout are
excluded, so a long-lived connection exported every 300 s is not mistaken for a 300 s beacon.

Candidates come from flow counts per (source, destination) pair over the look-back: destinations
with enough flows and few distinct sources (a destination half the office talks to is a shared
service, not a C2 server), then their pairs with enough repetitions, most first, capped at
``max_pairs`` per run. The counts are kept in the detector state per slice of the look-back (one
``interval`` normally), so a steady run aggregates only the slice that just closed instead of the
whole day; a slice stores only the pairs of its rare destinations (a destination with more than
``max_prevalence`` sources in one slice has more over the look-back too) and is recomputed when the
parameters that shaped it change. Regularity is judged on the median gap, the MAD of the gaps
relative to it (jitter), and the share of gaps on the beat.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from collector.anomaly.base import Detector, Finding, RunContext, Scope
from collector.anomaly.netclass import is_internal_ip
from collector.anomaly.settings import BeaconParams, DetectorParams
from collector.anomaly.state import StateTx
from collector.anomaly.stats import periodicity
from collector.store.base import Aggregation, Filter, Not, Query, Term
from soc_common.ecs import iso, parse_ts

log = logging.getLogger(__name__)

MAX_SLICES = 1000  # look-back / slice width above this: aggregate the look-back directly, keep nothing
SLICE_PAIRS = 65_000  # pairs one slice aggregation returns at most (under Elasticsearch's bucket limit)


def slice_seconds(p: BeaconParams) -> int:
    """The slice width: the largest step that tiles the look-back and that runs end on."""
    return math.gcd(int(p.lookback), int(p.interval))


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
        pairs = self._candidates(ctx, scope, base, since, end, tx)
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

    def _candidates(
        self, ctx: RunContext, scope: Scope, base: tuple[Filter, ...], since: datetime, end: datetime, tx: StateTx
    ) -> list[tuple[int, str, str]]:
        """``(flows, source, destination)`` of the pairs worth a regularity test, most flows first."""
        p = scope.params
        assert isinstance(p, BeaconParams)
        step = slice_seconds(p)
        prefix = f"pairs:{scope.label}:"
        if step <= 0 or (end - since).total_seconds() / step > MAX_SLICES:
            slices = [self._slice(ctx, p, base, since, end)]
        else:
            version = repr((base, p.max_prevalence, step))  # what shaped a slice: reuse only a match
            stored = {k: v for k, v in ctx.state.load(self.name, prefix).items() if isinstance(v, dict)}
            starts = [since + timedelta(seconds=i * step) for i in range(int((end - since).total_seconds()) // step)]
            wanted = {prefix + iso(at): at for at in starts}
            for key in stored.keys() - wanted.keys():
                tx.delete(key)  # older than the look-back
            slices = []
            for key, at in wanted.items():
                record = stored.get(key)
                if record is None or record.get("version") != version:
                    record = {"version": version, **self._slice(ctx, p, base, at, at + timedelta(seconds=step))}
                    tx.put(key, record)
                slices.append(record)
        shared: set[str] = set().union(*(s["shared"] for s in slices))
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for record in slices:
            for source, destination, flows in record["pairs"]:
                if destination not in shared:
                    counts[(source, destination)] += int(flows)
        per_destination: dict[str, list[int]] = defaultdict(list)
        for (_source, destination), flows in counts.items():
            per_destination[destination].append(flows)
        pairs = [
            (flows, source, destination)
            for (source, destination), flows in counts.items()
            if flows >= p.min_connections
            and len(per_destination[destination]) <= p.max_prevalence
            and sum(per_destination[destination]) >= p.min_connections
            and not (p.external_only and is_internal_ip(destination))
        ]
        pairs.sort(key=lambda t: (-t[0], t[1], t[2]))
        return pairs

    @staticmethod
    def _slice(
        ctx: RunContext, p: BeaconParams, base: tuple[Filter, ...], start: datetime, end: datetime
    ) -> dict[str, Any]:
        """Flow counts per pair in ``[start, end)``: ``shared`` destinations (too many sources to be a
        C2 server) and ``pairs`` ``[source, destination, flows]`` of the others."""
        agg = Aggregation("composite", fields=("destination.ip", "source.ip"), size=SLICE_PAIRS)
        buckets = ctx.store.aggregate(Query(base, start, end), agg)
        if len(buckets) >= SLICE_PAIRS:
            log.warning("beacon: more than %d pairs in %s..%s; some are not analysed", SLICE_PAIRS, start, end)
        sources: dict[str, int] = defaultdict(int)
        for b in buckets:
            sources[str(b.key[0])] += 1
        shared = sorted(d for d, n in sources.items() if n > p.max_prevalence)
        dropped = set(shared)
        pairs = [[str(b.key[1]), str(b.key[0]), b.count] for b in buckets if str(b.key[0]) not in dropped]
        return {"shared": shared, "pairs": pairs}
