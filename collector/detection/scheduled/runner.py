"""Run compiled rules over their next ingest-time window and keep checkpoints and run reports.

Each rule has its own checkpoint, so a slow or failing rule never holds the others back. A window
is ``(checkpoint, now - ingest_delay]`` on ``event.ingested``: an event that arrives late (old
``@timestamp``, new ingest time) falls in the window of the run after its arrival, whatever its
event time. A rule whose run fails keeps its checkpoint (the window is retried next time) and the
error is in its run report; the other rules run as usual.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from collector.detection.alerts import build_alert, event_id_of
from collector.detection.scheduled.convert import CompiledRules, ScheduledCorrelation, ScheduledQuery, lucene_dsl
from collector.detection.scheduled.correlate import run_correlation
from collector.detection.scheduled.search import fetch_all, filtered, floor_ms, ingest_window
from collector.detection.scheduled.settings import ScheduledSettings
from collector.detection.scheduled.state import RunReport, StateStore
from collector.store.elastic import ElasticEventStore
from soc_common.alert import Alert, AlertSink

log = logging.getLogger(__name__)

ScheduledRule = ScheduledQuery | ScheduledCorrelation
_INGEST_SORT = ({"event.ingested": {"order": "asc"}}, {"event.id": {"order": "asc"}})


class ScheduledDetector:
    """Owns the rules, the store, the state and the alert sink; runs one rule-window at a time per rule."""

    def __init__(
        self,
        store: ElasticEventStore,
        rules: CompiledRules,
        state: StateStore,
        sink: AlertSink,
        settings: ScheduledSettings | None = None,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.rules = rules
        self.state = state
        self.sink = sink
        self.settings = settings or ScheduledSettings()
        self.clock = clock or (lambda: datetime.now(UTC))
        self._busy: set[str] = set()
        self._busy_lock = threading.Lock()

    # -- what runs when ----------------------------------------------------------------------------

    def scheduled_rules(self) -> list[ScheduledRule]:
        """Rules that raise alerts themselves (base rules only correlations consume are not run alone)."""
        singles: list[ScheduledRule] = [q for q in self.rules.queries if q.emit]
        return singles + list(self.rules.correlations)

    def interval_of(self, rule: ScheduledRule) -> float:
        configured = self.settings.rule_intervals.get(rule.meta.id)
        if configured is not None:
            return float(configured)
        return float(rule.interval_seconds or self.settings.interval)

    def window_end(self, now: datetime | None = None) -> datetime:
        return floor_ms((now or self.clock()) - timedelta(seconds=self.settings.ingest_delay))

    def window_for(self, rule: ScheduledRule, now: datetime | None = None) -> tuple[datetime | None, datetime]:
        """``(start, end)``: start exclusive (None: the initial look-back applies), end inclusive."""
        end = self.window_end(now)
        start = self.state.checkpoint(rule.meta.id)
        if start is None:
            start = floor_ms(end - timedelta(seconds=self.settings.initial_lookback))
        return start, end

    def is_due(self, rule: ScheduledRule, now: datetime | None = None) -> bool:
        start, end = self.window_for(rule, now)
        checkpoint = self.state.checkpoint(rule.meta.id)
        if checkpoint is None:
            return True
        return start is not None and (end - start).total_seconds() >= self.interval_of(rule)

    # -- running -----------------------------------------------------------------------------------

    def run_rule(self, rule: ScheduledRule, now: datetime | None = None) -> RunReport | None:
        """Run ``rule`` over its next window; None if the window is empty or a run is in progress."""
        with self._busy_lock:
            if rule.meta.id in self._busy:
                return None
            self._busy.add(rule.meta.id)
        try:
            return self._run(rule, now)
        finally:
            with self._busy_lock:
                self._busy.discard(rule.meta.id)

    def _run(self, rule: ScheduledRule, now: datetime | None) -> RunReport | None:
        start, end = self.window_for(rule, now)
        if start is not None and end <= start:
            return None
        report = RunReport(rule.meta.id, rule.meta.title, start, end, started_at=self.clock())
        began = time.perf_counter()
        alerts: list[Alert] = []
        try:
            if isinstance(rule, ScheduledCorrelation):
                outcome = run_correlation(
                    self.store,
                    rule,
                    start,
                    end,
                    max_groups=self.settings.max_groups,
                    max_events_per_group=self.settings.max_events_per_group,
                    page_size=self.settings.page_size,
                )
                alerts, report.hits, report.overflow = outcome.alerts, outcome.hits, outcome.overflow
                report.details["candidate_groups"] = outcome.candidates
            else:
                alerts = self._run_query(rule, start, end, report)
            if alerts:
                self.sink.emit(alerts)
            report.alerts = len(alerts)
        except Exception as exc:  # reported in the run record; the checkpoint stays for a retry
            report.error = f"{type(exc).__name__}: {exc}"[:2000]
            log.warning("scheduled rule %s (%s) failed: %s", rule.meta.title, rule.meta.id, report.error)
        report.duration_ms = (time.perf_counter() - began) * 1000.0
        if report.overflow:
            log.warning("scheduled rule %s: %d hits over the per-run cap", rule.meta.id, report.overflow)
        return self.state.record(report, advance=report.ok)

    def _run_query(self, rule: ScheduledQuery, start: datetime | None, end: datetime, report: RunReport) -> list[Alert]:
        hits = fetch_all(
            self.store,
            filtered(lucene_dsl(rule.lucene), ingest_window(start, end)),
            _INGEST_SORT,
            page_size=self.settings.page_size,
            cap=self.settings.max_hits_per_run,
        )
        report.hits, report.overflow = hits.total, hits.overflow
        return [build_alert(rule.meta, [event], event_ids=[event_id_of(event)]) for event in hits.events]

    def run_once(
        self, *, rule_ids: Sequence[str] | None = None, only_due: bool = True, now: datetime | None = None
    ) -> list[RunReport]:
        """One pass over every (due) rule, or the named ones; for cron, tests and the CLI."""
        now = now or self.clock()
        wanted = set(rule_ids) if rule_ids else None
        reports: list[RunReport] = []
        for rule in self.scheduled_rules():
            if wanted is not None and rule.meta.id not in wanted:
                continue
            if only_due and wanted is None and not self.is_due(rule, now):
                continue
            report = self.run_rule(rule, now)
            if report is not None:
                reports.append(report)
        return reports
