"""The notification outbox: a message is stored in the transaction that caused it, then delivered
by the scheduler with retries, so a mail server outage never loses or blocks a change."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from soc_api.db.base import Base
from soc_api.db.types import JsonType, UtcDateTime
from soc_common.ecs import utc_now

CHANNELS = ("email", "webhook")
STATES = ("pending", "sent", "dead")


class OutboxMessage(Base):
    __tablename__ = "notification_outbox"
    __table_args__ = (Index("ix_notification_outbox_state_next_attempt_at", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(500))  # e-mail address or webhook name
    kind: Mapped[str] = mapped_column(String(32))  # alert, assignment, deadline, overdue
    dedup_key: Mapped[str] = mapped_column(String(300), unique=True)
    subject: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Watermark(Base):
    """How far a producer has read a growing table (alerts by creation time, audit log by seq)."""

    __tablename__ = "notification_watermarks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)
    at: Mapped[datetime | None] = mapped_column(UtcDateTime)
