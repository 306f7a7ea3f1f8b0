"""What every detector shares: scopes (per-site parameters), windows, findings, queries.

A detector judges closed, aligned windows of ``@timestamp`` (a window is closed ``settle`` seconds
after its end, so late batches have arrived). Per-site overrides split a run into scopes: each
overridden site is analysed on its own with its own parameters (``soc.site`` filter), every other
site together with the defaults, so overrides cost queries only where they exist.

Catch-up (first start, or after downtime) is where the cost is, so it is bounded twice. Only
detectors that learn baselines (``learns_from_history``) start ``initial_lookback`` back; the others
judge fixed thresholds and start ``initial_recent`` back, since last week's scan is not worth a
thousand queries at start-up. And a detector gets all its pending windows at once
(:meth:`Detector.detect_range`): threshold detectors first ask the store, in one aggregation over
the whole range, which windows could possibly hold a finding (:meth:`Detector.hot_windows`) and
judge only those; baseline detectors read their series for the whole range in a few histograms
(:mod:`collector.anomaly.series`).
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

    def histogram(
        self,
        filters: Sequence[Filter],
        start: datetime,
        end: datetime,
        step: float,
        metric: str | None = None,
        metric_field: str | None = None,
    ) -> dict[datetime, Bucket]:
        """Non-empty ``step``-second buckets (epoch-aligned, like the windows) keyed by bucket start."""
        agg = Aggregation(
            "histogram",
            interval_seconds=int(step),
            metric=metric,  # type: ignore[arg-type]
            metric_field=metric_field,
        )
        return {b.key: b for b in self.store.aggregate(Query(tuple(filters), start, end), agg) if b.count > 0}

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


Window = tuple[datetime, datetime]


def span(windows: Sequence[Window]) -> tuple[datetime, datetime, float]:
    """(start, end, step seconds) of consecutive equal windows."""
    return windows[0][0], windows[-1][1], (windows[0][1] - windows[0][0]).total_seconds()


def windows_at(windows: Sequence[Window], starts: set[datetime]) -> list[Window]:
    return [w for w in windows if w[0] in starts]


class Detector(ABC):
    """A windowed detector; subclasses implement :meth:`detect` for one scope and one window."""

    name: str = "detector"
    #: True for detectors whose baselines need history: they start ``initial_lookback`` back.
    learns_from_history: bool = False

    def window_seconds(self, params: DetectorParams) -> float:
        return 3600.0

    def windows(self, ctx: RunContext, params: DetectorParams, checkpoint: datetime | None) -> list[Window]:
        """Closed windows after the checkpoint, oldest first, at most ``max_catchup_windows`` per run.

        Without a checkpoint (first start) a baseline detector begins ``initial_lookback`` back and a
        threshold detector ``initial_recent`` back (at least one window).
        """
        step = self.window_seconds(params)
        last_closed = align(ctx.now - timedelta(seconds=ctx.settings.settle), step)
        if checkpoint is None:
            lookback = ctx.settings.initial_lookback if self.learns_from_history else ctx.settings.initial_recent
            checkpoint = align(ctx.now - timedelta(seconds=max(lookback, step)), step)
        pending = int((last_closed - checkpoint).total_seconds() // step)
        count = max(0, min(pending, ctx.settings.max_catchup_windows))
        return [
            (checkpoint + timedelta(seconds=i * step), checkpoint + timedelta(seconds=(i + 1) * step))
            for i in range(count)
        ]

    def hot_windows(self, ctx: RunContext, scope: Scope, windows: Sequence[Window]) -> list[Window]:
        """The windows that can hold a finding; the default is all of them.

        Threshold detectors override this with one aggregation over the whole range: an upper
        bound (a distinct count over the range, or over several candidates together) that stays
        below the threshold rules a window out without judging it.
        """
        return list(windows)

    def detect_range(self, ctx: RunContext, scope: Scope, windows: Sequence[Window], tx: StateTx) -> list[Finding]:
        """All pending windows of one scope, oldest first."""
        candidates = self.hot_windows(ctx, scope, windows) if len(windows) > 1 else list(windows)
        findings: list[Finding] = []
        for start, end in candidates:
            findings += self.detect(ctx, scope, start, end, tx)
        return findings

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
