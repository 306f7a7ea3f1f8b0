"""Hand-over tables: per-site sequence counters, the outbox, receipts, public keys, STIX objects.

``handover_sequences`` holds one row per sending site; the outbox insert and the counter update
happen in one transaction, so sequence numbers are gapless: a rolled-back package takes its
number with it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from soc_api.db.base import Base
from soc_api.db.types import JsonType, UtcDateTime
from soc_common.ecs import utc_now

OUTBOX_STATUSES = ("queued", "sent", "acknowledged", "failed")


class HandoverSequence(Base):
    __tablename__ = "handover_sequences"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_sequence: Mapped[int] = mapped_column(BigInteger, default=0)


class OutboxEntry(Base):
    __tablename__ = "handover_outbox"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'sent', 'acknowledged', 'failed')", name="status"),
        UniqueConstraint("site", "sequence"),
        Index("ix_handover_outbox_status_next_attempt_at", "status", "next_attempt_at"),
    )

    package_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    sequence: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(32), index=True)
    subject: Mapped[str | None] = mapped_column(String(128), index=True)  # e.g. "incident:12"
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    document: Mapped[dict[str, Any]] = mapped_column(JsonType)  # the signed package
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now, index=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class HandoverReceipt(Base):
    """The receiver's signed receipt for a package, kept as proof of delivery."""

    __tablename__ = "handover_receipts"

    package_id: Mapped[str] = mapped_column(ForeignKey("handover_outbox.package_id"), primary_key=True)
    receipt_id: Mapped[str] = mapped_column(String(64))
    receipt: Mapped[dict[str, Any]] = mapped_column(JsonType)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    stored_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)


class HandoverKey(Base):
    """Every public signing key the site used, with its validity, for the API and the audit trail."""

    __tablename__ = "handover_keys"

    kid: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    public_key: Mapped[str] = mapped_column(String(64))
    valid_from: Mapped[datetime] = mapped_column(UtcDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UtcDateTime)


class StixObjectRow(Base):
    """One version of a STIX object served by TAXII; ``id`` orders ``date_added`` ties for paging."""

    __tablename__ = "handover_stix_objects"
    __table_args__ = (
        UniqueConstraint("collection", "stix_id", "modified"),
        Index("ix_handover_stix_objects_collection_date_added_id", "collection", "date_added", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    collection: Mapped[str] = mapped_column(String(64))
    stix_id: Mapped[str] = mapped_column(String(128), index=True)
    stix_type: Mapped[str] = mapped_column(String(64))
    modified: Mapped[str] = mapped_column(String(32))  # the object's STIX timestamp string
    date_added: Mapped[datetime] = mapped_column(UtcDateTime)
    object: Mapped[dict[str, Any]] = mapped_column(JsonType)
    package_id: Mapped[str | None] = mapped_column(String(36))
