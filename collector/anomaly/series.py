"""Hourly series with seasonal baselines, persisted through the detector's state transaction, and
the batched read of a series over many windows (:func:`observe`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from collector.anomaly.base import RunContext, Window, span
from collector.anomaly.state import StateTx
from collector.anomaly.stats import Baseline, SeasonalSlots, local_slot
from collector.store.base import Aggregation, Bucket, Filter, Query
from soc_common.ecs import iso, parse_ts

COMPOSITE_LIMIT = 65_000  # buckets one request may return (Elasticsearch's default limit is 65,536)


class SeriesBook:
    """All series of one detector under ``prefix``, loaded once per run and written back via ``tx``."""

    def __init__(self, ctx: RunContext, detector: str, prefix: str, tx: StateTx, keep_weeks: int) -> None:
        self.ctx = ctx
        self.prefix = prefix
        self.tx = tx
        self.keep = keep_weeks
        if not any(k.startswith(prefix) for k in tx.kv):
            for key, value in ctx.state.load(detector, prefix).items():
                tx.kv.setdefault(key, value)

    def entities(self) -> list[str]:
        return [k[len(self.prefix) :] for k in self.tx.kv if k.startswith(self.prefix)]

    def record(self, entity: str) -> dict[str, Any]:
        rec: dict[str, Any] | None = self.tx.kv.get(self.prefix + entity)
        return rec if rec is not None else {"slots": {}, "first": None, "silent": 0, "alerted": False}

    def judge(
        self, entity: str, at: datetime, min_samples: int, min_scale: float, learning_days: float
    ) -> Baseline | None:
        """The baseline for the hour starting ``at``; None while still learning."""
        rec = self.record(entity)
        if rec["first"] is None or parse_ts(rec["first"]) > at - timedelta(days=learning_days):
            return None
        weekday, hour = local_slot(at, self.ctx.tz)
        slots = SeasonalSlots(rec["slots"], self.keep)
        return slots.baseline(weekday, hour, self.ctx.workdays, min_samples, min_scale)

    def add(self, entity: str, at: datetime, value: float, **extra: Any) -> dict[str, Any]:
        rec = self.record(entity)
        slots = SeasonalSlots(rec["slots"], self.keep)
        slots.add(*local_slot(at, self.ctx.tz), value)
        rec["slots"] = slots.slots
        rec["first"] = rec["first"] or iso(at)
        rec.update(extra)
        self.tx.put(self.prefix + entity, rec)
        return rec


def observe(
    ctx: RunContext,
    filters: Sequence[Filter],
    windows: Sequence[Window],
    fld: str,
    size: int,
    metric_field: str | None = None,
) -> list[dict[str, float]]:
    """Per window, ``{entity: value}`` (event count, or the sum of ``metric_field``), for ``fld``'s values
    (the ``size`` entities with most events in each window).

    A catch-up range is read in one pass: a composite aggregation over (window, entity), which the
    store answers with one scan instead of one per window or per entity. Only when that would
    exceed what one request may return does it fall back to one terms aggregation per window.
    """
    metric = "sum" if metric_field else None
    if len(windows) > 1:
        start, end, step = span(windows)
        agg = Aggregation(
            "composite",
            fields=("@timestamp", fld),
            interval_seconds=int(step),
            size=COMPOSITE_LIMIT,
            metric=metric,  # type: ignore[arg-type]
            metric_field=metric_field,
        )
        buckets = ctx.store.aggregate(Query(tuple(filters), start, end), agg)
        if len(buckets) < COMPOSITE_LIMIT:
            index = {w[0]: i for i, w in enumerate(windows)}
            grouped: list[list[Bucket]] = [[] for _ in windows]
            for b in buckets:
                at = index.get(b.key[0])
                if at is not None:
                    grouped[at].append(b)
            out: list[dict[str, float]] = []
            for found in grouped:
                found.sort(key=lambda b: (-b.count, str(b.key[1])))
                out.append({str(b.key[1]): float(b.value or 0.0) if metric else float(b.count) for b in found[:size]})
            return out
    return [
        {
            str(b.key): float(b.value or 0.0) if metric else float(b.count)
            for b in ctx.terms(filters, s, e, fld, size, metric, metric_field)
        }
        for s, e in windows
    ]
