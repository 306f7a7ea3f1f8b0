"""Volume baselines: events/hour per host, data source, zone and agent; outbound bytes/hour per zone.

Each hour is compared with the seasonal median of that entity (weekday-hour, then workday/weekend
hour, then hour of day; see :mod:`collector.anomaly.stats` for why median/MAD). A spike needs a
large robust score, a multiple of the median and an absolute floor, so small hosts do not alert on
noise. Silence is an entity that normally reports (median at least ``silence_min_median``) with
``silence_hours`` empty hours in a row: an agent stopped, a log source was cut, a zone went dark.
Each silence episode alerts once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from collector.anomaly.base import Detector, Finding, RunContext, Scope, Window
from collector.anomaly.series import SeriesBook, observe
from collector.anomaly.settings import VolumeParams
from collector.anomaly.state import StateTx
from collector.store.base import Filter, Term
from soc_common.ecs import iso

# dimension: (terms field, metric field summed or None for event counts, entity field in alerts)
DIMENSIONS: dict[str, tuple[str, str | None]] = {
    "host": ("host.name", None),
    "dataset": ("event.dataset", None),
    "zone": ("soc.zone", None),
    "agent": ("soc.agent_id", None),
    "zone_out_bytes": ("soc.source_zone", "source.bytes"),
}


class VolumeDetector(Detector):
    name = "volume"
    learns_from_history = True

    def detect(self, ctx: RunContext, scope: Scope, start: datetime, end: datetime, tx: StateTx) -> list[Finding]:
        return self.detect_range(ctx, scope, [(start, end)], tx)

    def detect_range(self, ctx: RunContext, scope: Scope, windows: Sequence[Window], tx: StateTx) -> list[Finding]:
        p = scope.params
        assert isinstance(p, VolumeParams)
        findings: list[Finding] = []
        for dim in p.dimensions:
            if dim not in DIMENSIONS:
                continue
            fld, metric = DIMENSIONS[dim]
            series = observe(ctx, self._filters(ctx, scope, dim), windows, fld, p.max_entities, metric)
            book = SeriesBook(ctx, self.name, f"{dim}:{scope.label}:", tx, p.weeks_kept)
            for (start, end), observed in zip(windows, series, strict=True):
                for entity in sorted(set(book.entities()) | set(observed)):
                    findings += self._judge(ctx, scope, p, book, dim, entity, observed.get(entity, 0.0), start, end)
        return findings

    @staticmethod
    def _filters(ctx: RunContext, scope: Scope, dim: str) -> tuple[Filter, ...]:
        """Event counts: everything in the scope; byte dimensions: flows leaving the organisation."""
        if DIMENSIONS[dim][1] is None:
            return scope.filters()
        return (ctx.flows(), *scope.filters(), *ctx.not_internal_destination())

    def _judge(
        self,
        ctx: RunContext,
        scope: Scope,
        p: VolumeParams,
        book: SeriesBook,
        dim: str,
        entity: str,
        value: float,
        start: datetime,
        end: datetime,
    ) -> list[Finding]:
        """One entity-hour against its seasonal baseline; then the hour joins the series."""
        fld, metric = DIMENSIONS[dim]
        filters = self._filters(ctx, scope, dim)
        base = book.judge(entity, start, p.min_samples, 1.0, p.learning_days)
        rec = book.record(entity)
        silent = int(rec.get("silent", 0)) + 1 if value == 0 else 0
        alerted = bool(rec.get("alerted", False)) and value == 0
        findings: list[Finding] = []
        if base is not None:
            floor = p.min_spike_bytes if metric else p.min_spike_events
            score = base.score(value)
            if value >= floor and score >= p.spike_score and value >= p.spike_ratio * max(base.median, 1.0):
                findings.append(
                    self._finding(
                        ctx, scope, dim, fld, entity, "spike", value, base.as_dict(), score, start, end, filters
                    )
                )
            if silent >= p.silence_hours and not alerted and base.median >= p.silence_min_median:
                alerted = True
                findings.append(
                    self._finding(
                        ctx,
                        scope,
                        dim,
                        fld,
                        entity,
                        "silence",
                        value,
                        base.as_dict(),
                        score,
                        start,
                        end,
                        filters,
                        silent,
                    )
                )
        book.add(entity, start, value, silent=silent, alerted=alerted)
        return findings

    def _finding(
        self,
        ctx: RunContext,
        scope: Scope,
        dim: str,
        fld: str,
        entity: str,
        kind: str,
        value: float,
        baseline: dict[str, Any],
        score: float,
        start: datetime,
        end: datetime,
        filters: tuple[Filter, ...],
        silent_hours: int = 0,
    ) -> Finding:
        unit = "bytes/hour" if dim.endswith("bytes") else "events/hour"
        spike = kind == "spike"
        title = (
            f"Lưu lượng tăng đột biến / Volume spike: {dim} {entity} {value:.0f} {unit}"
            if spike
            else f"Nguồn ngừng gửi dữ liệu / Source went silent: {dim} {entity} for {silent_hours} h"
        )
        explanation = {
            "detector": self.name,
            "kind": kind,
            "dimension": dim,
            "entity": entity,
            "window": {"start": iso(start), "end": iso(end)},
            "observed": value,
            "unit": unit,
            "baseline": baseline,
            "score": round(score, 2),
        }
        if not spike:
            explanation["silent_hours"] = silent_hours
        return Finding(
            rule=f"{dim}_{kind}",
            title=title,
            severity="medium" if spike or dim == "host" else "high",
            group={fld: entity},
            timestamp=start,
            window_start=start,
            window_end=end,
            explanation=explanation,
            evidence=(*filters, Term(fld, entity)) if spike else (),
            tactics=("exfiltration",) if dim.endswith("bytes") else ("defense_evasion",) if not spike else (),
            techniques=("T1048",) if dim.endswith("bytes") else ("T1562",) if not spike else (),
            host_name=entity if dim == "host" else None,
            zone=entity if dim.startswith("zone") else None,
            site=scope.site,
        )
