"""What becomes a notification: new high-severity alerts, assignments (read from the audit trail,
so alert and incident assignments made anywhere are seen), and reporting deadlines that are near
or missed. Each producer keeps a watermark or relies on message keys, so a run is idempotent."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from soc_api.db.models import AlertRow, AuditEntry, Incident, User
from soc_api.incidents.models import IncidentObligation
from soc_api.notifications.models import Watermark
from soc_api.notifications.outbox import Message, dedup_key, enqueue
from soc_api.notifications.settings import NotificationsSettings
from soc_api.services.principal import expand_site_scope
from soc_common.alert import SEVERITY_RANK
from soc_common.ecs import iso

RESPONDER_ROLES = ("admin", "officer")
SCAN_LIMIT = 1000
FIRST_RUN_LOOKBACK = timedelta(hours=1)


def _watermark(session: Session, name: str) -> Watermark:
    mark = session.get(Watermark, name)
    if mark is None:
        mark = Watermark(name=name, value=0, at=None)
        session.add(mark)
    return mark


def _link(settings: NotificationsSettings, path: str) -> str:
    return f"{settings.base_url.rstrip('/')}{path}" if settings.base_url else path


def fan_out(
    settings: NotificationsSettings,
    users: Iterable[User],
    kind: str,
    key: str,
    subject: str,
    body: str,
    payload: dict[str, Any],
) -> list[Message]:
    """One e-mail per user with an address (when SMTP is set up), one post per subscribed webhook."""
    out: list[Message] = []
    if settings.email.host is not None:
        for user in users:
            if user.email:
                out.append(
                    Message("email", user.email, kind, dedup_key(key, "email", user.email), subject, body, payload)
                )
    for hook in settings.webhooks:
        if kind in hook.kinds:
            out.append(
                Message("webhook", hook.name, kind, dedup_key(key, "webhook", hook.name), subject, body, payload)
            )
    return out


def responders(session: Session, site: str | None) -> list[User]:
    """Active admins and officers whose site scope covers ``site``."""
    users = session.scalars(select(User).where(User.is_active.is_(True), User.role.in_(RESPONDER_ROLES)))
    out = []
    for user in users:
        scope = expand_site_scope(session, user.site_scope)
        if scope is None or (site is not None and site in scope):
            out.append(user)
    return out


def new_alerts(session: Session, settings: NotificationsSettings, now: datetime) -> int:
    mark = _watermark(session, "alerts")
    since = mark.at or (now - FIRST_RUN_LOOKBACK)
    min_rank = SEVERITY_RANK[settings.alert_min_severity]
    rows = list(
        session.scalars(
            select(AlertRow)
            .where(AlertRow.created_at > since, AlertRow.severity_rank >= min_rank, AlertRow.drill.is_(False))
            .order_by(AlertRow.created_at)
            .limit(SCAN_LIMIT)
        )
    )
    messages: list[Message] = []
    for a in rows:
        subject = f"[SOC] Cảnh báo {a.severity}: {a.rule_title}"[:500]
        body = (
            f"Luật: {a.rule_title} ({a.rule_id})\nMức độ: {a.severity}\nThời điểm: {iso(a.timestamp)}\n"
            f"Máy: {a.host_name or '-'}  Người dùng: {a.user_name or '-'}  Đơn vị: {a.site or '-'}\n"
            f"Chi tiết: {_link(settings, '/alerts/' + a.id)}\n"
        )
        payload = {
            "event": "alert", "id": a.id, "rule_id": a.rule_id, "rule_title": a.rule_title,
            "severity": a.severity, "timestamp": iso(a.timestamp), "host": a.host_name, "site": a.site,
        }  # fmt: skip
        messages += fan_out(settings, responders(session, a.site), "alert", f"alert:{a.id}", subject, body, payload)
    if rows:
        mark.at = rows[-1].created_at
    elif mark.at is None:
        mark.at = since
    return enqueue(session, messages, now)


def assignments(session: Session, settings: NotificationsSettings, now: datetime) -> int:
    mark = _watermark(session, "assignments")
    if mark.value == 0 and mark.at is None:  # first run: start at the end of the trail
        last = session.scalar(select(AuditEntry.seq).order_by(AuditEntry.seq.desc()).limit(1))
        mark.value, mark.at = int(last or 0), now
        return 0
    rows = list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.seq > mark.value, AuditEntry.action.in_(("alert.assign", "incident.assign")))
            .order_by(AuditEntry.seq)
            .limit(SCAN_LIMIT)
        )
    )
    messages: list[Message] = []
    for entry in rows:
        assignee = (entry.after or {}).get("assignee")
        if not assignee or assignee == (entry.before or {}).get("assignee"):
            continue
        user = session.scalar(select(User).where(User.username == assignee, User.is_active.is_(True)))
        if user is None:
            continue
        what = "cảnh báo" if entry.object_type == "alert" else "sự cố"
        path = f"/{entry.object_type}s/{entry.object_id}"
        subject = f"[SOC] Bạn được giao xử lý {what} {entry.object_id}"
        body = f"{entry.actor} đã giao {what} {entry.object_id} cho {assignee}.\nChi tiết: {_link(settings, path)}\n"
        payload = {"event": "assignment", "object_type": entry.object_type, "id": entry.object_id, "assignee": assignee}
        messages += fan_out(settings, [user], "assignment", f"assign:{entry.seq}", subject, body, payload)
    if rows:
        mark.value = rows[-1].seq
    return enqueue(session, messages, now)


def deadlines(session: Session, settings: NotificationsSettings, now: datetime) -> int:
    """Pending reporting duties due within the warning window (once), and once more when missed."""
    horizon = now + timedelta(hours=settings.deadline_warning_hours)
    rows = session.execute(
        select(IncidentObligation, Incident)
        .join(Incident, Incident.id == IncidentObligation.incident_id)
        .where(IncidentObligation.state == "pending", IncidentObligation.due_at.is_not(None))
        .where(IncidentObligation.due_at <= horizon)
        .limit(SCAN_LIMIT)
    ).all()
    messages: list[Message] = []
    for duty, incident in rows:
        assert duty.due_at is not None
        kind = "overdue" if duty.due_at < now else "deadline"
        state = "ĐÃ QUÁ HẠN" if kind == "overdue" else "sắp đến hạn"
        subject = f"[SOC] Báo cáo sự cố #{incident.id} {state}: {duty.title}"[:500]
        body = (
            f"Sự cố #{incident.id}: {incident.title}\nNghĩa vụ: {duty.title}\nGửi tới: {duty.recipient}\n"
            f"Hạn: {iso(duty.due_at)}\nCăn cứ: {duty.source}\n"
            f"Chi tiết: {_link(settings, f'/incidents/{incident.id}')}\n"
        )
        payload = {
            "event": kind, "incident_id": incident.id, "obligation": duty.obligation_id,
            "due_at": iso(duty.due_at), "title": duty.title,
        }  # fmt: skip
        users = responders(session, incident.site)
        key = f"{kind}:{incident.id}:{duty.obligation_id}:{iso(duty.due_at)}"
        messages += fan_out(settings, users, kind, key, subject, body, payload)
    return enqueue(session, messages, now)
