"""What every detector shares: scopes (per-site parameters), windows, findings, queries.

A detector judges closed, aligned windows of ``@timestamp`` (a window is closed ``settle`` seconds
after its end, so late batches have arrived). Per-site overrides split a run into scopes: each
overridden site is analysed on its own with its own parameters (``soc.site`` filter), every other
site together with the defaults, so overrides cost queries only where they exist.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from collector.anomaly.netclass import ZonePlan
from collector.anomaly.settings import AnomalySettings, DetectorParams
from collector.anomaly.state import AnomalyState, StateTx
from collector.store.base import Aggregation, Bucket, EventStore, Filter, Not, Query, Term

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Scope:
    """The sites one pass covers: one site (``site``), or all but the overridden ones (``site`` None)."""

    params: DetectorParams
    site: str | None = None
    exclude_sites: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return self.site or "*"

    def filters(self) -> tuple[Filter, ...]:
        if self.site is not None:
            return (Term("soc.site", self.site),)
        if self.exclude_sites:
            return (Not(Term("soc.site", list(self.exclude_sites))),)
        return ()


@dataclass
class Finding:
    """One anomaly, before it becomes an Alert; ``explanation`` must say baseline, observed, score, window."""

    rule: str
    title: str
    severity: str
    group: dict[str, Any]
    timestamp: datetime
    window_start: datetime
    window_end: datetime
    explanation: dict[str, Any]
    evidence: tuple[Filter, ...] = ()  # filters selecting the events behind it (within the window)
    tactics: tuple[str, ...] = ()
    techniques: tuple[str, ...] = ()
    host_name: str | None = None
    user_name: str | None = None
    source_ip: str | None = None
    destination_ip: str | None = None
    zone: str | None = None
    site: str | None = None


@dataclass
class RunContext:
    store: EventStore
    settings: AnomalySettings
    state: AnomalyState
    zones: ZonePlan
    now: datetime
    tz: ZoneInfo = field(init=False)
    workdays: frozenset[int] = field(init=False)

    def __post_init__(self) -> None:
        self.tz = ZoneInfo(self.settings.timezone)
        self.workdays = frozenset(self.settings.workdays)

    def terms(
        self,
        filters: Sequence[Filter],
        start: datetime,
        end: datetime,
        fld: str,
        size: int,
        metric: str | None = None,
        metric_field: str | None = None,
    ) -> list[Bucket]:
        agg = Aggregation("terms", fld, size=size, metric=metric, metric_field=metric_field)  # type: ignore[arg-type]
        return self.store.aggregate(Query(tuple(filters), start, end), agg)

    def flows(self) -> Term:
        return Term("event.dataset", list(self.settings.flow_datasets))

    def to_internal_zone(self) -> Filter | None:
        """Matches flows whose destination is in an internal zone (None when no zones are configured)."""
        return Term("soc.destination_zone", sorted(self.zones.internal)) if self.zones.internal else None

    def not_internal_destination(self) -> tuple[Filter, ...]:
        internal = self.to_internal_zone()
        return (Not(internal),) if internal is not None else ()


def align(ts: datetime, seconds: float) -> datetime:
    step = int(seconds)
    return EPOCH + timedelta(seconds=(int((ts - EPOCH).total_seconds()) // step) * step)


class Detector(ABC):
    """A windowed detector; subclasses implement :meth:`detect` for one scope and one window."""

    name: str = "detector"

    def window_seconds(self, params: DetectorParams) -> float:
        return 3600.0

    def windows(
        self, ctx: RunContext, params: DetectorParams, checkpoint: datetime | None
    ) -> list[tuple[datetime, datetime]]:
        """Closed windows after the checkpoint (first run: from ``initial_lookback``), oldest first, capped."""
        step = self.window_seconds(params)
        last_closed = align(ctx.now - timedelta(seconds=ctx.settings.settle), step)
        start = checkpoint or align(ctx.now - timedelta(seconds=ctx.settings.initial_lookback), step)
        out: list[tuple[datetime, datetime]] = []
        while (
            start + timedelta(seconds=step) <= last_closed + timedelta(seconds=0)
            and len(out) < ctx.settings.max_catchup_windows
        ):
            out.append((start, start + timedelta(seconds=step)))
            start += timedelta(seconds=step)
        return out

    def learned(
        self, ctx: RunContext, params: DetectorParams, entity_filters: Sequence[Filter], before: datetime
    ) -> bool:
        """Whether the store holds events matching ``entity_filters`` older than the learning period."""
        if params.learning_days <= 0:
            return True
        cutoff = before - timedelta(days=params.learning_days)
        return ctx.store.count(Query(tuple(entity_filters), None, cutoff)) > 0

    @abstractmethod
    def detect(self, ctx: RunContext, scope: Scope, start: datetime, end: datetime, tx: StateTx) -> list[Finding]: ...
