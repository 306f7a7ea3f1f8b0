"""Hourly series with seasonal baselines, persisted through the detector's state transaction."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from collector.anomaly.base import RunContext
from collector.anomaly.state import StateTx
from collector.anomaly.stats import Baseline, SeasonalSlots, local_slot
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
