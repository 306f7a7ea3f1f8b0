"""Marking the alerts a live drill produced, so real statistics exclude them.

Inside the drill window (start to end, or now while it runs) every alert raised on a
participant's host is flagged ``drill`` and linked to the drill, and incidents built from those
alerts are linked too. Marking is idempotent: it runs when the drill is updated and again from the
scheduler while alerts of a running drill keep arriving.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from soc_api.db.models import AlertRow, Incident, IncidentAlert
from soc_api.drills.models import Drill, DrillAlert, DrillIncident
from soc_api.services import audit
from soc_api.systems.services.context import RuleError

MARKED_KINDS = ("live", "national")
CHUNK = 500


def mark_alerts(session: Session, drill: Drill, now: datetime, actor: str, source_ip: str | None = None) -> int:
    """Flag and link the drill's alerts; returns how many were newly linked."""
    hosts = list(drill.participant_hosts or [])
    if drill.kind not in MARKED_KINDS or drill.started_at is None or not hosts or drill.status == "cancelled":
        return 0
    end = drill.ended_at or now
    found: list[str] = []
    for start in range(0, len(hosts), CHUNK):
        q = select(AlertRow.id).where(
            func.lower(AlertRow.host_name).in_(hosts[start : start + CHUNK]),
            AlertRow.timestamp >= drill.started_at,
            AlertRow.timestamp <= end,
            or_(AlertRow.site == drill.site, AlertRow.site.is_(None)),
        )
        found += list(session.scalars(q))
    linked = set(session.scalars(select(DrillAlert.alert_id).where(DrillAlert.drill_id == drill.id)))
    new = sorted(set(found) - linked)
    for start in range(0, len(new), CHUNK):
        chunk = new[start : start + CHUNK]
        session.execute(
            update(AlertRow)
            .where(AlertRow.id.in_(chunk), AlertRow.drill.is_(False))
            .values(drill=True, version=AlertRow.version + 1)
            .execution_options(synchronize_session=False)
        )
        session.add_all(DrillAlert(drill_id=drill.id, alert_id=a) for a in chunk)
    session.flush()
    incidents = 0
    if new:
        have = set(session.scalars(select(DrillIncident.incident_id).where(DrillIncident.drill_id == drill.id)))
        q2 = select(IncidentAlert.incident_id).where(IncidentAlert.alert_id.in_(new[: CHUNK * 20])).distinct()
        for incident_id in sorted(set(session.scalars(q2)) - have):
            session.add(DrillIncident(drill_id=drill.id, incident_id=incident_id))
            incidents += 1
        session.flush()
        audit.append(
            session,
            actor=actor,
            action="drill.alerts_marked",
            object_type="drill",
            object_id=str(drill.id),
            after={"alerts": len(new), "alert_ids": new[:100], "incidents_linked": incidents},
            source_ip=source_ip,
        )
    return len(new)


def link_incident(session: Session, drill: Drill, incident_id: int, actor: str, source_ip: str | None) -> None:
    if session.get(Incident, incident_id) is None:
        raise RuleError("no such incident", status=422, kind="validation-error")
    if session.get(DrillIncident, (drill.id, incident_id)) is not None:
        return
    session.add(DrillIncident(drill_id=drill.id, incident_id=incident_id))
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="drill.incident_link",
        object_type="drill",
        object_id=str(drill.id),
        after={"incident_id": incident_id},
        source_ip=source_ip,
    )


def mark_active_drills(session: Session, now: datetime, grace: timedelta = timedelta(days=2)) -> int:
    """Scheduler job body: re-mark running drills and drills that ended within ``grace`` (alerts
    arrive late when agents were offline)."""
    q = select(Drill).where(
        Drill.kind.in_(MARKED_KINDS),
        Drill.started_at.is_not(None),
        or_(Drill.status == "running", Drill.ended_at >= now - grace),
    )
    return sum(mark_alerts(session, d, now, "scheduler") for d in session.scalars(q))
