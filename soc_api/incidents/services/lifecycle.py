"""Creating incidents (by hand or by escalating alerts), editing, classifying, assigning and moving
them through the response phases.

Phases run detected -> analysing -> contained -> eradicated -> recovered -> closed. Moving forward
may skip phases (a phishing mail can be contained and eradicated at once) but never jumps back
except to ``analysing`` (re-infection); closing needs the lessons learned and reopening returns to
``analysing``. Severity is never typed in: it is the profile's verdict on the incident's facts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from soc_api.db.models import AlertRow, Incident, IncidentAlert, User
from soc_api.incidents.classify import classify, facts_for
from soc_api.incidents.deadlines import Anchors, duties
from soc_api.incidents.models import IncidentHost, IncidentObligation, IncidentSystem
from soc_api.incidents.rules import CATEGORIES, FACT_DEFAULTS, STATUSES, profile_for
from soc_api.incidents.services.context import IncidentCtx, IncidentError, record, snapshot
from soc_api.incidents.services.tasks import add_playbook_tasks
from soc_api.services import alerts as alert_service
from soc_api.services import audit
from soc_api.services.principal import expand_site_scope
from soc_api.systems.models import InformationSystem
from soc_common.ecs import iso, parse_ts

WORK_ROLES = ("admin", "officer")


@dataclass
class IncidentDraft:
    title: str
    category: str
    site: str | None = None
    description: str = ""
    detected_at: datetime | None = None
    profile: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    system_ids: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    assignee: str | None = None


def get_visible(session: Session, ctx: IncidentCtx, incident_id: int, *, for_update: bool = False) -> Incident:
    stmt = select(Incident).where(Incident.id == incident_id)
    if for_update:
        stmt = stmt.with_for_update()
    incident = session.scalars(stmt).one_or_none()
    if incident is None or not ctx.principal.sees_site(incident.site):
        raise IncidentError("no such incident", status=404, kind="not-found")
    return incident


def _check_facts(facts: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(facts) - set(FACT_DEFAULTS))
    if unknown:
        raise IncidentError(f"unknown fact(s): {', '.join(unknown)[:200]}", status=422, kind="validation-error")
    for name, value in facts.items():
        want = type(FACT_DEFAULTS[name])
        ok = isinstance(value, bool) if want is bool else isinstance(value, int | float) and not isinstance(value, bool)
        if not ok or (want is not bool and value < 0):
            raise IncidentError(f"fact {name}: expected {want.__name__} >= 0", status=422, kind="validation-error")
    return facts


def _systems(session: Session, ctx: IncidentCtx, site: str | None, ids: Sequence[str]) -> list[InformationSystem]:
    out = []
    for system_id in dict.fromkeys(ids):
        system = session.get(InformationSystem, system_id)
        if system is None or not ctx.principal.sees_site(system.site):
            raise IncidentError(f"no such information system {system_id!r}", status=422, kind="unknown-system")
        out.append(system)
    return out


def linked_systems(session: Session, incident: Incident) -> list[InformationSystem]:
    q = select(InformationSystem).join(IncidentSystem, IncidentSystem.system_id == InformationSystem.id)
    return list(session.scalars(q.where(IncidentSystem.incident_id == incident.id)))


def _set_links(session: Session, incident: Incident, systems: list[InformationSystem], hosts: Sequence[str]) -> None:
    have_s = set(session.scalars(select(IncidentSystem.system_id).where(IncidentSystem.incident_id == incident.id)))
    for system in systems:
        if system.id not in have_s:
            session.add(IncidentSystem(incident_id=incident.id, system_id=system.id))
    have_h = set(session.scalars(select(IncidentHost.host_name).where(IncidentHost.incident_id == incident.id)))
    for host in dict.fromkeys(h.strip()[:255] for h in hosts if h.strip()):
        if host not in have_h:
            session.add(IncidentHost(incident_id=incident.id, host_name=host))
    session.flush()


def _resolve_assignee(session: Session, incident: Incident, username: str | None) -> User | None:
    if username is None:
        return None
    user = session.scalar(select(User).where(User.username == username, User.is_active.is_(True)))
    if user is None:
        raise IncidentError(f"no active user {username!r}", status=422, kind="unknown-user")
    if user.role not in WORK_ROLES:
        raise IncidentError(f"user {username!r} ({user.role}) cannot work incidents", status=422, kind="wrong-role")
    scope = expand_site_scope(session, user.site_scope)
    if scope is not None and incident.site not in scope:
        raise IncidentError(f"user {username!r} cannot see site {incident.site!r}", status=422, kind="out-of-scope")
    return user


def reclassify(session: Session, ctx: IncidentCtx, incident: Incident) -> None:
    """Re-evaluate seriousness and re-derive the reporting duties from the current facts.

    Duties already sent keep their record; pending ones follow the facts (an incident that turns
    out serious gains the 24-hour notice; one that does not loses it unless it was sent).
    """
    profile = ctx.profile(incident)
    facts = facts_for(incident.facts or {}, linked_systems(session, incident))
    severity, reasons = classify(profile, facts)
    incident.severity, incident.serious_reasons = severity, reasons
    facts["serious"] = severity == "serious"
    times = incident.state_times or {}
    recovered = times.get("recovered")
    anchors = Anchors(incident.detected_at, parse_ts(recovered) if recovered else None, incident.closed_at)
    wanted = {d.obligation_id: d for d in duties(profile, facts, anchors, ctx.calendar())}
    rows = {
        o.obligation_id: o
        for o in session.scalars(select(IncidentObligation).where(IncidentObligation.incident_id == incident.id))
    }
    for oid, duty in wanted.items():
        row = rows.get(oid)
        if row is None:
            session.add(
                IncidentObligation(
                    incident_id=incident.id, obligation_id=oid, title=duty.title, recipient=duty.recipient,
                    source=duty.source, report_kind=duty.report_kind, due_at=duty.due_at,
                    immediate=duty.immediate, state="pending",
                )
            )  # fmt: skip
        elif row.state == "pending" and row.due_at != duty.due_at:
            row.due_at = duty.due_at
    for oid, row in rows.items():
        if oid not in wanted and row.state == "pending":
            session.delete(row)
    session.flush()


def create(session: Session, ctx: IncidentCtx, draft: IncidentDraft, alerts: Sequence[AlertRow] = ()) -> Incident:
    if draft.category not in CATEGORIES:
        raise IncidentError(f"unknown category {draft.category!r}", status=422, kind="validation-error")
    site = draft.site
    if site is None and alerts:
        site = alerts[0].site
    if site is None and ctx.principal.sites is not None:
        raise IncidentError("site is required for a site-scoped caller", status=422, kind="validation-error")
    if site is not None and not ctx.principal.sees_site(site):
        raise IncidentError(f"site {site!r} is outside your scope", status=403, kind="forbidden")
    detected = draft.detected_at or (min(a.timestamp for a in alerts) if alerts else ctx.now)
    if detected > ctx.now:
        raise IncidentError("detected_at is in the future", status=422, kind="validation-error")
    try:
        profile = profile_for(ctx.profiles(), detected, draft.profile or ctx.settings.profile)
    except ValueError as exc:
        raise IncidentError(str(exc), status=422, kind="unknown-profile") from None
    systems = _systems(session, ctx, site, draft.system_ids + [a.system_id for a in alerts if a.system_id])
    incident = Incident(
        title=draft.title, category=draft.category, severity="normal", status="detected",
        created_by=ctx.actor, created_at=ctx.now, site=site, description=draft.description,
        detected_at=detected, profile=profile.id, facts=_check_facts(dict(draft.facts)),
        serious_reasons=[], state_times={"detected": iso(detected)},
    )  # fmt: skip
    session.add(incident)
    session.flush()
    if draft.assignee is not None:
        assignee = _resolve_assignee(session, incident, draft.assignee)
        incident.assignee_id = assignee.id if assignee else None
    _set_links(session, incident, systems, [*draft.hosts, *(a.host_name for a in alerts if a.host_name)])
    _link_alerts(session, ctx, incident, alerts)
    reclassify(session, ctx, incident)
    add_playbook_tasks(session, ctx, incident)
    record(
        session, ctx, incident, "create", f"Tạo sự cố: {incident.title}",
        after=snapshot(session, incident), data={"alerts": [a.id for a in alerts]},
    )  # fmt: skip
    if draft.assignee is not None:
        record(session, ctx, incident, "assign", f"Giao cho {draft.assignee}", before={"assignee": None},
               after={"assignee": draft.assignee})  # fmt: skip
    return incident


def _link_alerts(session: Session, ctx: IncidentCtx, incident: Incident, alerts: Sequence[AlertRow]) -> None:
    """Link alerts and put them in progress (each alert change audited by the alert service)."""
    have = set(session.scalars(select(IncidentAlert.alert_id).where(IncidentAlert.incident_id == incident.id)))
    for alert in alerts:
        if alert.id in have:
            continue
        session.add(IncidentAlert(incident_id=incident.id, alert_id=alert.id))
        if alert.status in ("new", "acknowledged"):
            before = alert_service.triage_state(alert)
            alert.status = "in_progress"
            alert.acknowledged_at = alert.acknowledged_at or ctx.now
            session.flush()
            audit.append(
                session, actor=ctx.actor, action="alert.escalate", object_type="alert", object_id=alert.id,
                before=before, after={**alert_service.triage_state(alert), "incident_id": incident.id},
                source_ip=ctx.source_ip,
            )  # fmt: skip
    session.flush()


def visible_alerts(session: Session, ctx: IncidentCtx, alert_ids: Sequence[str]) -> list[AlertRow]:
    out = []
    for alert_id in dict.fromkeys(alert_ids):
        row = alert_service.get_visible(session, ctx.principal, alert_id[:64], for_update=True)
        if row is None:
            raise IncidentError(f"no such alert {alert_id[:64]!r}", status=422, kind="unknown-alert")
        out.append(row)
    return out


def add_alerts(session: Session, ctx: IncidentCtx, incident: Incident, alerts: Sequence[AlertRow]) -> None:
    if incident.status == "closed":
        raise IncidentError("cannot add alerts to a closed incident")
    for a in alerts:
        if a.site != incident.site and incident.site is not None:
            raise IncidentError(f"alert {a.id} is from site {a.site!r}, not {incident.site!r}", status=422,
                                kind="other-site")  # fmt: skip
    before = snapshot(session, incident)
    systems = _systems(session, ctx, incident.site, [a.system_id for a in alerts if a.system_id])
    _set_links(session, incident, systems, [a.host_name for a in alerts if a.host_name])
    _link_alerts(session, ctx, incident, alerts)
    reclassify(session, ctx, incident)
    record(session, ctx, incident, "link_alerts", f"Gắn {len(alerts)} cảnh báo", before=before,
           after=snapshot(session, incident), data={"alerts": [a.id for a in alerts]})  # fmt: skip


@dataclass
class IncidentPatch:
    title: str | None = None
    description: str | None = None
    category: str | None = None
    facts: dict[str, Any] | None = None
    add_system_ids: list[str] = field(default_factory=list)
    add_hosts: list[str] = field(default_factory=list)
    lessons_learned: str | None = None


def update(session: Session, ctx: IncidentCtx, incident: Incident, patch: IncidentPatch) -> None:
    if incident.status == "closed":
        raise IncidentError("a closed incident cannot be edited; reopen it first")
    before = snapshot(session, incident)
    if patch.category is not None:
        if patch.category not in CATEGORIES:
            raise IncidentError(f"unknown category {patch.category!r}", status=422, kind="validation-error")
        incident.category = patch.category
    if patch.title is not None:
        incident.title = patch.title
    if patch.description is not None:
        incident.description = patch.description
    if patch.lessons_learned is not None:
        incident.lessons_learned = patch.lessons_learned
    if patch.facts is not None:
        incident.facts = {**(incident.facts or {}), **_check_facts(dict(patch.facts))}
    _set_links(session, incident, _systems(session, ctx, incident.site, patch.add_system_ids), patch.add_hosts)
    reclassify(session, ctx, incident)
    if patch.category is not None:
        add_playbook_tasks(session, ctx, incident)
    after = snapshot(session, incident)
    changed = sorted(k for k in after if after[k] != before.get(k))
    record(session, ctx, incident, "update", "Cập nhật: " + ", ".join(changed) if changed else "Cập nhật",
           before=before, after=after)  # fmt: skip
    if before["severity"] != incident.severity:
        record(session, ctx, incident, "severity", f"Mức độ: {before['severity']} -> {incident.severity}",
               data={"reasons": incident.serious_reasons})  # fmt: skip


def assign(session: Session, ctx: IncidentCtx, incident: Incident, username: str | None) -> None:
    if incident.status == "closed":
        raise IncidentError("cannot assign a closed incident")
    before_user = session.get(User, incident.assignee_id) if incident.assignee_id else None
    user = _resolve_assignee(session, incident, username)
    incident.assignee_id = user.id if user else None
    record(
        session, ctx, incident, "assign", f"Giao cho {username}" if username else "Bỏ giao",
        before={"assignee": before_user.username if before_user else None}, after={"assignee": username},
    )  # fmt: skip


def _allowed(current: str, target: str) -> bool:
    if current == "closed":
        return target == "analysing"  # reopen
    if target == "analysing":
        return current != "analysing"
    return STATUSES.index(target) > STATUSES.index(current)


def transition(session: Session, ctx: IncidentCtx, incident: Incident, target: str, note: str | None = None) -> None:
    if target not in STATUSES:
        raise IncidentError(f"unknown status {target!r}", status=422, kind="validation-error")
    if not _allowed(incident.status, target):
        raise IncidentError(f"cannot move an incident from {incident.status} to {target}")
    if target == "closed" and not (incident.lessons_learned or "").strip():
        raise IncidentError("closing needs the lessons learned", status=422, kind="lessons-required")
    before = incident.status
    times = dict(incident.state_times or {})
    times[target] = iso(ctx.now)
    incident.state_times = times
    incident.status = target
    incident.closed_at = ctx.now if target == "closed" else None
    reclassify(session, ctx, incident)
    action = "reopen" if before == "closed" else "transition"
    record(session, ctx, incident, action, f"{before} -> {target}" + (f": {note}" if note else ""),
           before={"status": before}, after={"status": target, "note": note})  # fmt: skip


def add_note(session: Session, ctx: IncidentCtx, incident: Incident, text: str) -> None:
    record(session, ctx, incident, "note", text, after={"note": text}, kind="note")
