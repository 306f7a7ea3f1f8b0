"""Detection -> SOC database: :class:`DatabaseAlertSink` implements ``soc_common.alert.AlertSink``.

Per alert, in order:
1. already stored (its id, or an id folded into another alert) -> ignored: replays are harmless;
2. matched by an active suppression -> not stored, the suppression's hit counter goes up;
3. an open alert with the same ``(rule_id, group_key)`` whose first event lies within the window
   -> that alert's ``duplicate_count`` and ``last_seen`` go up, the id is remembered as an alias;
4. otherwise a new row (plus one ``alert_techniques`` row per technique).
A batch commits once. If a concurrent writer inserted the same alert first, the batch is retried
one alert per transaction, so one conflict never loses the rest.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from soc_api.db.migrate import upgrade
from soc_api.db.models import AlertAlias, AlertRow, AlertTechnique, Suppression
from soc_api.db.session import begin_write, make_engine, make_session_factory
from soc_api.services import suppression
from soc_common.alert import SEVERITY_RANK, Alert
from soc_common.ecs import utc_now

log = logging.getLogger(__name__)

MAX_EVENT_IDS = 200  # ids kept on a deduplicated alert; the count keeps going


@dataclass
class SinkStats:
    inserted: int = 0
    deduplicated: int = 0
    suppressed: int = 0
    replayed: int = 0
    conflicts: int = 0


def alert_to_row(alert: Alert) -> AlertRow:
    return AlertRow(
        id=alert.id,
        source=alert.source,
        rule_id=alert.rule_id,
        rule_title=alert.rule_title[:500],
        rule_level=alert.rule_level,
        rule_tags=list(alert.rule_tags),
        tactics=list(alert.tactics),
        techniques=list(alert.techniques),
        severity=alert.severity,
        severity_rank=SEVERITY_RANK[alert.severity],
        timestamp=alert.timestamp,
        detected_at=alert.detected_at,
        group_key=alert.group_key[:512],
        event_ids=list(alert.event_ids)[:MAX_EVENT_IDS],
        events=list(alert.events),
        host_name=alert.host_name,
        user_name=alert.user_name,
        source_ip=alert.source_ip,
        destination_ip=alert.destination_ip,
        site=alert.site,
        zone=alert.zone,
        system_id=alert.system_id,
        explanation=dict(alert.explanation),
        drill=alert.drill,
        status="new",
        duplicate_count=0,
        last_seen=alert.timestamp,
    )


class DatabaseAlertSink:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        dedup_window: timedelta = timedelta(hours=1),
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._sessions = session_factory
        self._window = dedup_window
        self._clock = clock
        self._lock = threading.Lock()
        self._engine: Engine | None = None
        self.stats = SinkStats()

    @classmethod
    def from_url(
        cls, url: str, *, dedup_window: timedelta = timedelta(hours=1), migrate: bool = True
    ) -> DatabaseAlertSink:
        """A sink with its own engine (for the collector), migrating the schema first by default."""
        if migrate:
            upgrade(url)
        engine = make_engine(url)
        sink = cls(make_session_factory(engine), dedup_window=dedup_window)
        sink._engine = engine
        return sink

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    def emit(self, alerts: Sequence[Alert]) -> None:
        if not alerts:
            return
        with self._lock:
            try:
                with self._sessions.begin() as session:
                    self._store(session, alerts)
            except IntegrityError:
                self.stats.conflicts += 1
                log.info("alert batch conflicted with a concurrent writer; retrying one by one")
                for alert in alerts:
                    try:
                        with self._sessions.begin() as session:
                            self._store(session, [alert])
                    except IntegrityError:
                        self.stats.replayed += 1  # the other writer stored it: same outcome

    def _store(self, session: Session, alerts: Sequence[Alert]) -> None:
        begin_write(session)
        now = self._clock()
        ids = [a.id for a in alerts]
        known = set(session.scalars(select(AlertRow.id).where(AlertRow.id.in_(ids))))
        known |= set(session.scalars(select(AlertAlias.alias_id).where(AlertAlias.alias_id.in_(ids))))
        rules = suppression.active_for(session, [a.rule_id for a in alerts], now)
        for alert in alerts:
            if alert.id in known:
                self.stats.replayed += 1
                continue
            known.add(alert.id)
            hit = next((r for r in rules if suppression.matches(r, alert, now)), None)
            if hit is not None:
                self._count_suppressed(hit, now)
                continue
            if self._fold_into_open(session, alert):
                continue
            row = alert_to_row(alert)
            session.add(row)
            session.add_all(
                AlertTechnique(alert_id=alert.id, technique=t, timestamp=alert.timestamp)
                for t in sorted({t[:32] for t in alert.techniques})
            )
            session.flush()
            self.stats.inserted += 1

    def _count_suppressed(self, rule: Suppression, now: datetime) -> None:
        rule.hit_count = (rule.hit_count or 0) + 1
        rule.last_hit_at = now
        self.stats.suppressed += 1

    def _fold_into_open(self, session: Session, alert: Alert) -> bool:
        if self._window <= timedelta(0):
            return False
        earlier = session.scalar(
            select(AlertRow)
            .where(
                AlertRow.rule_id == alert.rule_id,
                AlertRow.group_key == alert.group_key[:512],
                AlertRow.status != "closed",
                AlertRow.timestamp >= alert.timestamp - self._window,
                AlertRow.timestamp <= alert.timestamp + self._window,
            )
            .order_by(AlertRow.timestamp.desc())
            .limit(1)
            .with_for_update()
        )
        if earlier is None:
            return False
        earlier.duplicate_count += 1
        earlier.last_seen = max(earlier.last_seen, alert.timestamp)
        room = MAX_EVENT_IDS - len(earlier.event_ids)
        if room > 0:
            new_ids = [i for i in alert.event_ids if i not in earlier.event_ids][:room]
            earlier.event_ids = [*earlier.event_ids, *new_ids]
        session.add(AlertAlias(alias_id=alert.id, alert_id=earlier.id))
        session.flush()
        self.stats.deduplicated += 1
        return True
