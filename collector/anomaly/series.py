"""Hourly series with seasonal baselines, persisted through the detector's state transaction, and
the batched read of a series over many windows (:func:`observe`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from collector.anomaly.base import RunContext, Window, span
from collector.anomaly.state import StateTx
from collector.anomaly.stats import Baseline, SeasonalSlots, local_slot
from collector.store.base import Filter, Term
from soc_common.ecs import iso, parse_ts


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
    """Per window, ``{entity: value}`` (event count, or the sum of ``metric_field``), for ``fld``'s values.

    One terms aggregation per window is the simple way; over a long catch-up range with few
    entities (data sets, zones, a handful of hosts) one terms aggregation over the whole range plus
    one histogram per entity is far fewer queries, so that is used when the entities are fewer than
    the windows (and the range's terms were not truncated by ``size``).
    """
    metric = "sum" if metric_field else None
    if len(windows) > 1:
        start, end, step = span(windows)
        entities = ctx.terms(filters, start, end, fld, size)
        if len(entities) < min(size, len(windows)):
            index = {w[0]: i for i, w in enumerate(windows)}
            out: list[dict[str, float]] = [{} for _ in windows]
            for entity in entities:
                per_window = ctx.histogram((*filters, Term(fld, entity.key)), start, end, step, metric, metric_field)
                for at, b in per_window.items():
                    if at in index:
                        out[index[at]][str(entity.key)] = float(b.value or 0.0) if metric else float(b.count)
            return out
    return [
        {
            str(b.key): float(b.value or 0.0) if metric else float(b.count)
            for b in ctx.terms(filters, s, e, fld, size, metric, metric_field)
        }
        for s, e in windows
    ]
