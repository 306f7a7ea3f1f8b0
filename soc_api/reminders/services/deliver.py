"""Delivery: one in-app notification per recipient (deduplicated), then one e-mail per recipient
listing what is new. E-mail failures are logged without secrets and retried on the next run."""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.orm import Session

from soc_api.db.models import User
from soc_api.reminders.models import Notification
from soc_api.reminders.services.collect import Reminder
from soc_api.reminders.settings import SmtpSettings
from soc_api.reports.formatting import vn_date
from soc_api.services.principal import expand_site_scope

log = logging.getLogger(__name__)


@dataclass
class DeliveryResult:
    created: int = 0
    emailed: int = 0
    email_errors: int = 0


def recipients(reminder: Reminder, users: list[User], scopes: dict[int, frozenset[str] | None]) -> list[User]:
    out = []
    for user in users:
        if user.role not in reminder.roles:
            continue
        scope = scopes[user.id]
        if reminder.site is None or scope is None or reminder.site in scope:
            out.append(user)
    return out


def store(session: Session, reminders: list[Reminder], now: datetime) -> int:
    """Insert the notifications not yet delivered to each recipient; returns how many are new."""
    users = list(session.scalars(select(User).where(User.is_active.is_(True))))
    scopes = {u.id: expand_site_scope(session, u.site_scope) for u in users}
    keys = sorted({r.dedup_key for r in reminders})
    have: set[tuple[int, str]] = set()
    for start in range(0, len(keys), 500):
        q = select(Notification.user_id, Notification.dedup_key).where(
            Notification.dedup_key.in_(keys[start : start + 500])
        )
        have |= {(int(u), str(k)) for u, k in session.execute(q)}
    created = 0
    for reminder in reminders:
        for user in recipients(reminder, users, scopes):
            if (user.id, reminder.dedup_key) in have:
                continue
            have.add((user.id, reminder.dedup_key))
            session.add(
                Notification(
                    user_id=user.id,
                    site=reminder.site,
                    kind=reminder.kind,
                    dedup_key=reminder.dedup_key,
                    title=reminder.title[:500],
                    body=reminder.body,
                    due_date=reminder.due_date,
                    object_type=reminder.object_type,
                    object_id=reminder.object_id,
                    created_at=now,
                )
            )
            created += 1
    session.flush()
    return created


def _message(smtp: SmtpSettings, to: str, items: list[Notification]) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = smtp.sender
    msg["To"] = to
    msg["Subject"] = f"[SOC] {len(items)} nhắc việc an ninh mạng"
    lines = [f"- {n.title}" + (f" (hạn {vn_date(n.due_date)})" if n.due_date else "") for n in items]
    msg.set_content("Các việc cần xử lý:\n\n" + "\n".join(lines) + "\n\nXem chi tiết trong hệ thống SOC.\n")
    return msg


def _connect(smtp: SmtpSettings) -> smtplib.SMTP:
    assert smtp.host is not None
    if smtp.security == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            smtp.host, smtp.port, timeout=smtp.timeout_seconds, context=ssl.create_default_context()
        )
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)
        if smtp.security == "starttls":
            client.starttls(context=ssl.create_default_context())
    if smtp.username and smtp.password is not None:
        client.login(smtp.username, smtp.password.get_secret_value())
    return client


def send_pending(session: Session, smtp: SmtpSettings, now: datetime, retry_days: int) -> tuple[int, int]:
    """E-mail every recipient their notifications not yet e-mailed; returns (sent, failed) messages."""
    if smtp.host is None:
        return 0, 0
    q = (
        select(Notification, User.email)
        .join(User, User.id == Notification.user_id)
        .where(
            Notification.emailed_at.is_(None),
            Notification.created_at >= now - timedelta(days=retry_days),
            User.email.is_not(None),
        )
        .order_by(Notification.id)
    )
    by_address: dict[str, list[Notification]] = defaultdict(list)
    for notification, email in session.execute(q):
        by_address[str(email)].append(notification)
    if not by_address:
        return 0, 0
    sent = failed = 0
    try:
        client = _connect(smtp)
    except (OSError, smtplib.SMTPException) as exc:
        log.warning("SMTP %s:%s unavailable: %s", smtp.host, smtp.port, type(exc).__name__)
        return 0, len(by_address)
    try:
        for address, items in by_address.items():
            try:
                client.send_message(_message(smtp, address, items))
            except smtplib.SMTPException as exc:
                failed += 1
                log.warning("reminder e-mail refused: %s", type(exc).__name__)
                continue
            for n in items:
                n.emailed_at = now
            sent += 1
    finally:
        try:
            client.quit()
        except (OSError, smtplib.SMTPException):
            client.close()
    session.flush()
    return sent, failed
