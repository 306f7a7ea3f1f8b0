"""One detection cycle: every enabled detector over its closed windows, findings -> alerts -> sink.

Order per detector: detect all pending windows, hand the new alerts to the sink, mark them
reported, then commit state and checkpoint together. A crash anywhere before the commit redoes the
windows; the ``reported`` table and deterministic ids keep the redo from alerting twice. A detector
that fails is logged and recorded; the others still run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from collector.anomaly.base import Detector, Finding, RunContext, Scope
from collector.anomaly.detectors import all_detectors
from collector.anomaly.netclass import ZonePlan
from collector.anomaly.settings import AnomalySettings, merge_params
from collector.anomaly.state import AnomalyState, StateTx
from collector.store.base import EventStore, Query, Term
from soc_common.alert import Alert, AlertSink
from soc_common.ecs import event_id, iso

log = logging.getLogger(__name__)


@dataclass
class CycleReport:
    alerts: list[Alert] = field(default_factory=list)
    windows: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    duration_ms: dict[str, float] = field(default_factory=dict)


class AnomalyEngine:
    def __init__(
        self,
        settings: AnomalySettings,
        store: EventStore,
        state: AnomalyState,
        sink: AlertSink,
        zone_names: Sequence[str] = (),
        detectors: Sequence[Detector] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.state = state
        self.sink = sink
        self.zones = ZonePlan(zone_names, settings.external_zones)
        self.detectors = list(detectors) if detectors is not None else all_detectors()

    def scopes(self, detector: str) -> list[Scope]:
        """Default scope (all sites without overrides) plus one per overridden site; disabled ones dropped."""
        base = self.settings.params(detector)
        overrides: dict[str, dict[str, Any]] = {}
        for site, per in self.settings.sites.items():
            if detector in per:
                overrides.setdefault(site, {}).update(per[detector])
        for site, per in self.state.overrides().items():
            if detector in per:
                overrides.setdefault(site, {}).update(per[detector])
        scopes = [Scope(base, None, tuple(sorted(overrides)))]
        scopes += [Scope(merge_params(base, o), site) for site, o in sorted(overrides.items())]
        return [s for s in scopes if s.params.enabled]

    def run_once(self, now: datetime | None = None) -> CycleReport:
        now = now or datetime.now(UTC)
        # What was written up to now becomes searchable through the indexes (Elasticsearch's
        # refresh; the embedded store indexes its tail), so the cycle's many small pivot queries
        # do not each read the rows written since the last indexing run.
        self.store.refresh()
        ctx = RunContext(self.store, self.settings, self.state, self.zones, now)
        report = CycleReport()
        for detector in self.detectors:
            started = time.perf_counter()
            windows: list[tuple[datetime, datetime]] = []
            alerts: list[Alert] = []
            error = None
            try:
                windows, alerts = self._run_detector(ctx, detector)
            except Exception as exc:  # one detector's failure must not stop the others
                error = f"{type(exc).__name__}: {exc}"
                log.exception("anomaly detector %s failed", detector.name)
                report.errors[detector.name] = error
            ms = (time.perf_counter() - started) * 1000
            report.duration_ms[detector.name] = ms
            report.windows[detector.name] = len(windows)
            report.alerts += alerts
            self.state.record_run(detector.name, ms, len(windows), len(alerts), error)
        return report

    def _run_detector(self, ctx: RunContext, detector: Detector) -> tuple[list[tuple[datetime, datetime]], list[Alert]]:
        base = self.settings.params(detector.name)
        scopes = self.scopes(detector.name)
        windows = detector.windows(ctx, base, self.state.checkpoint(detector.name))
        if not windows:
            return [], []
        tx = StateTx(detector.name)
        findings: list[Finding] = []
        for scope in scopes:
            findings += detector.detect_range(ctx, scope, windows, tx)
        alerts = [self._alert(ctx, detector.name, f) for f in findings]
        fresh = self.state.unreported(a.id for a in alerts)
        new = [a for a in alerts if a.id in fresh]
        if new:
            self.sink.emit(new)
            self.state.mark_reported(detector.name, [a.model_dump(mode="json") for a in new])
        tx.checkpoint = windows[-1][1]
        self.state.commit(tx)
        return windows, new

    def _alert(self, ctx: RunContext, detector: str, f: Finding) -> Alert:
        rule_id = f"anomaly.{detector}.{f.rule}"
        group_key = "|".join([rule_id, *(f"{k}={v}" for k, v in sorted(f.group.items())), iso(f.window_start)])
        events: list[dict[str, Any]] = []
        site, zone, host = f.site, f.zone, f.host_name
        if f.evidence and self.settings.evidence_events:
            query = Query(f.evidence, f.window_start, f.window_end)
            events = self.store.search(query, size=self.settings.evidence_events).events
            if events:
                first = events[-1]  # search is newest first
                site = site or first.get("soc", {}).get("site")
                zone = zone or first.get("soc", {}).get("zone")
                host = host or first.get("host", {}).get("name")
        if site is None and f.source_ip:
            hits = self.store.search(Query((Term("source.ip", f.source_ip),), f.window_start, f.window_end), size=1)
            site = hits.events[0].get("soc", {}).get("site") if hits.events else None
        tags = [f"attack.{t}" for t in f.tactics] + [f"attack.{t.lower()}" for t in f.techniques]
        return Alert(
            id=Alert.make_id(rule_id, group_key, iso(f.window_start)),
            source="anomaly",
            rule_id=rule_id,
            rule_title=f.title,
            rule_level=f.severity,  # type: ignore[arg-type]
            rule_tags=["anomaly", *tags],
            tactics=list(f.tactics),
            techniques=list(f.techniques),
            severity=f.severity,  # type: ignore[arg-type]
            timestamp=f.timestamp,
            detected_at=ctx.now,
            group_key=group_key,
            event_ids=[i for i in (event_id(e) for e in reversed(events)) if i],
            events=[_summary(e) for e in reversed(events)],
            host_name=host,
            user_name=f.user_name,
            source_ip=f.source_ip,
            destination_ip=f.destination_ip,
            site=site,
            zone=zone,
            explanation=f.explanation,
        )


_SUMMARY_FIELDS = ("@timestamp", "event", "source", "destination", "host", "user", "dns", "tls", "process", "soc")


def _summary(event: dict[str, Any]) -> dict[str, Any]:
    """Key fields only: alerts carry pointers to evidence, not whole documents."""
    out = {k: event[k] for k in _SUMMARY_FIELDS if k in event}
    if isinstance(out.get("event"), dict):
        out["event"] = {k: v for k, v in out["event"].items() if k != "original"}
    return out
