"""What every incident service call needs: who acts, from where, with which settings, and how a
change is recorded (audit trail + timeline, in the caller's transaction)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from soc_api.db.models import Incident, IncidentAlert
from soc_api.incidents.models import IncidentHost, IncidentSystem, IncidentTimelineEntry
from soc_api.incidents.rules import IncidentProfile, Playbook, load_playbooks, load_profiles
from soc_api.incidents.settings import IncidentsSettings
from soc_api.services import audit
from soc_api.services.principal import Principal
from soc_api.systems.calendar.holidays import WorkingCalendar, calendar_from
from soc_common.ecs import iso, utc_now


class IncidentError(Exception):
    """A refused change; the API answers ``status`` with problem type ``kind``."""

    def __init__(self, message: str, *, status: int = 409, kind: str = "invalid-transition") -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind


@dataclass(frozen=True)
class IncidentCtx:
    principal: Principal
    source_ip: str | None
    settings: IncidentsSettings
    data_dir: Path
    now: datetime = field(default_factory=utc_now)

    @property
    def actor(self) -> str:
        return self.principal.name

    def profiles(self) -> dict[str, IncidentProfile]:
        return load_profiles(self.settings.profiles_dir)

    def profile(self, incident: Incident) -> IncidentProfile:
        profiles = self.profiles()
        if incident.profile not in profiles:
            raise IncidentError(f"incident profile {incident.profile!r} is not installed", status=500, kind="profile")
        return profiles[incident.profile]

    def playbooks(self) -> dict[str, Playbook]:
        return load_playbooks(self.settings.playbooks_dir)

    def calendar(self) -> WorkingCalendar:
        return calendar_from(self.settings.calendar_file)


def snapshot(session: Session, incident: Incident) -> dict[str, Any]:
    """The incident's mutable state, as recorded in the audit log's before/after."""
    systems = session.scalars(select(IncidentSystem.system_id).where(IncidentSystem.incident_id == incident.id))
    hosts = session.scalars(select(IncidentHost.host_name).where(IncidentHost.incident_id == incident.id))
    alerts = session.scalars(select(IncidentAlert.alert_id).where(IncidentAlert.incident_id == incident.id))
    assignee = incident.assignee_id
    return {
        "title": incident.title,
        "category": incident.category,
        "severity": incident.severity,
        "status": incident.status,
        "site": incident.site,
        "detected_at": iso(incident.detected_at),
        "profile": incident.profile,
        "facts": dict(incident.facts or {}),
        "assignee_id": assignee,
        "lessons_learned": incident.lessons_learned,
        "systems": sorted(systems),
        "hosts": sorted(hosts),
        "alerts": sorted(alerts),
    }


def record(
    session: Session,
    ctx: IncidentCtx,
    incident: Incident,
    action: str,
    text: str,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    kind: str = "auto",
    data: dict[str, Any] | None = None,
) -> IncidentTimelineEntry:
    """Audit entry plus timeline entry for one change, in the caller's transaction."""
    session.flush()
    audit.append(
        session,
        actor=ctx.actor,
        action=f"incident.{action}",
        object_type="incident",
        object_id=str(incident.id),
        before=before,
        after=after,
        source_ip=ctx.source_ip,
    )
    entry = IncidentTimelineEntry(
        incident_id=incident.id, ts=ctx.now, actor=ctx.actor, kind=kind, action=action,
        text=text[:4000], data=data or {},
    )  # fmt: skip
    session.add(entry)
    return entry
