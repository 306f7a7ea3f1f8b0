"""Putting messages in the outbox and recording delivery outcomes with exponential back-off."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from soc_api.notifications.models import OutboxMessage
from soc_api.notifications.settings import NotificationsSettings

MAX_KEY = 300


def dedup_key(*parts: str) -> str:
    """A stable key; long keys keep a readable head and a hash of the whole."""
    key = ":".join(parts)
    if len(key) <= MAX_KEY:
        return key
    return key[:200] + "#" + hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Message:
    channel: str  # email | webhook
    target: str  # address or webhook name
    kind: str
    key: str
    subject: str
    body: str
    payload: dict[str, Any]


def enqueue(session: Session, messages: list[Message], now: datetime) -> int:
    """Add the messages not queued before (by key), in the caller's transaction; returns how many."""
    if not messages:
        return 0
    keys = sorted({m.key for m in messages})
    have = set(session.scalars(select(OutboxMessage.dedup_key).where(OutboxMessage.dedup_key.in_(keys))))
    added = 0
    for m in messages:
        if m.key in have:
            continue
        have.add(m.key)
        session.add(
            OutboxMessage(
                channel=m.channel, target=m.target[:500], kind=m.kind, dedup_key=m.key,
                subject=m.subject[:500], body=m.body, payload=m.payload, state="pending",
                attempts=0, next_attempt_at=now, created_at=now,
            )
        )  # fmt: skip
        added += 1
    session.flush()
    return added


def claim(session: Session, settings: NotificationsSettings, now: datetime) -> list[OutboxMessage]:
    """Due messages, leased so a second worker (or a crash mid-send) cannot deliver them twice at once."""
    stmt = (
        select(OutboxMessage)
        .where(OutboxMessage.state == "pending", OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(settings.batch_size)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = list(session.scalars(stmt))
    lease = now + timedelta(seconds=settings.lease_seconds)
    if rows:
        session.execute(
            update(OutboxMessage).where(OutboxMessage.id.in_([r.id for r in rows])).values(next_attempt_at=lease)
        )
    return rows


def backoff(settings: NotificationsSettings, attempts: int) -> timedelta:
    seconds = settings.backoff_base_seconds * (2 ** max(attempts - 1, 0))
    return timedelta(seconds=min(seconds, settings.backoff_max_seconds))


def record_outcome(
    session: Session, settings: NotificationsSettings, message_id: int, error: str | None, now: datetime
) -> str:
    """Mark sent, or schedule the next try; after ``max_attempts`` the message is dead. Returns the state."""
    row = session.get(OutboxMessage, message_id)
    if row is None:
        return "gone"
    row.attempts += 1
    if error is None:
        row.state, row.sent_at, row.last_error = "sent", now, None
    elif row.attempts >= settings.max_attempts:
        row.state, row.last_error = "dead", error[:500]
    else:
        row.next_attempt_at = now + backoff(settings, row.attempts)
        row.last_error = error[:500]
    return row.state
