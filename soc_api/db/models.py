"""The SOC database tables.

Alert filters used by triage (status, severity, rule, host, user, site, zone, system, time) each
have an index; ATT&CK techniques live in ``alert_techniques`` (one row per technique, indexed by
technique, then time) so a technique filter is an index range scan that stops after a page even
with a million alerts, instead of a JSON scan.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from soc_api.db.base import Base
from soc_api.db.types import JsonType, UtcDateTime
from soc_common.ecs import utc_now

ROLES = ("admin", "officer", "approver", "auditor")
ALERT_STATUSES = ("new", "acknowledged", "in_progress", "closed")
CLOSE_REASONS = ("true_positive", "false_positive", "benign", "duplicate")
SEVERITIES = ("informational", "low", "medium", "high", "critical")


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


class Site(Base):
    __tablename__ = "sites"

    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("sites.code"), index=True)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    site_scope: Mapped[str | None] = mapped_column(String(64))  # None = every site
    totp_secret_enc: Mapped[str | None] = mapped_column(Text)  # Fernet token, never the secret
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    recovery_codes: Mapped[list[str]] = mapped_column(JsonType, default=list)  # sha256 hex digests
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    last_login_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    locale: Mapped[str | None] = mapped_column(String(8))  # interface language; None = browser's choice
    time_zone: Mapped[str | None] = mapped_column(String(64))  # IANA zone for shown times; None = configured

    def __repr__(self) -> str:  # never show hashes or secrets
        return f"User(id={self.id!r}, username={self.username!r}, role={self.role!r})"


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))  # sha256 hex of a 256-bit random secret
    scopes: Mapped[list[str]] = mapped_column(JsonType, default=list)
    site_scope: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    def __repr__(self) -> str:
        return f"ApiKey(id={self.id!r}, name={self.name!r}, prefix={self.prefix!r})"


class RevokedToken(Base):
    """Signed tokens ended by logout before they expire (rows can be purged after ``expires_at``)."""

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class AlertRow(Base):
    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint(_in("status", ALERT_STATUSES), name="status"),
        CheckConstraint(_in("severity", SEVERITIES), name="severity"),
        CheckConstraint(f"close_reason IS NULL OR {_in('close_reason', CLOSE_REASONS)}", name="close_reason"),
        Index("ix_alerts_status_timestamp", "status", "timestamp"),
        Index("ix_alerts_severity_rank_timestamp", "severity_rank", "timestamp"),
        Index("ix_alerts_rule_id_group_key_status", "rule_id", "group_key", "status"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(16), default="sigma")
    rule_id: Mapped[str] = mapped_column(String(128), index=True)
    rule_title: Mapped[str] = mapped_column(String(500))
    rule_level: Mapped[str] = mapped_column(String(16), default="medium")
    rule_tags: Mapped[list[str]] = mapped_column(JsonType, default=list)
    tactics: Mapped[list[str]] = mapped_column(JsonType, default=list)
    techniques: Mapped[list[str]] = mapped_column(JsonType, default=list)  # display copy
    severity: Mapped[str] = mapped_column(String(16), index=True)
    severity_rank: Mapped[int] = mapped_column(Integer)
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    detected_at: Mapped[datetime] = mapped_column(UtcDateTime)
    group_key: Mapped[str] = mapped_column(String(512), default="")
    event_ids: Mapped[list[str]] = mapped_column(JsonType, default=list)
    events: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)
    host_name: Mapped[str | None] = mapped_column(String(255), index=True)
    user_name: Mapped[str | None] = mapped_column(String(255), index=True)
    source_ip: Mapped[str | None] = mapped_column(String(64))
    destination_ip: Mapped[str | None] = mapped_column(String(64))
    site: Mapped[str | None] = mapped_column(String(64), index=True)
    zone: Mapped[str | None] = mapped_column(String(64), index=True)
    system_id: Mapped[str | None] = mapped_column(String(64), index=True)
    explanation: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    drill: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="new")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    close_reason: Mapped[str | None] = mapped_column(String(32))
    close_note: Mapped[str | None] = mapped_column(Text)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    duplicate_count: Mapped[int] = mapped_column(Integer, default=0)
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now, onupdate=utc_now)
    version: Mapped[int] = mapped_column(Integer, default=1)

    assignee: Mapped[User | None] = relationship(lazy="selectin")

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy mapper config


class AlertTechnique(Base):
    """One row per (alert, ATT&CK technique), carrying the alert's (immutable) timestamp.

    The copy of ``timestamp`` lets "newest alerts with technique X" walk the
    (technique, timestamp, alert_id) index and stop after one page, instead of scanning alerts
    newest-first and probing each one.
    """

    __tablename__ = "alert_techniques"
    __table_args__ = (Index("ix_alert_techniques_technique_timestamp_alert_id", "technique", "timestamp", "alert_id"),)

    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True)
    technique: Mapped[str] = mapped_column(String(32), primary_key=True)
    timestamp: Mapped[datetime] = mapped_column(UtcDateTime)


class AlertAlias(Base):
    """Ids of alerts folded into an earlier one by deduplication, so a replay is recognised."""

    __tablename__ = "alert_aliases"

    alias_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)


class AlertComment(Base):
    __tablename__ = "alert_comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)


class Suppression(Base):
    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rule_id: Mapped[str | None] = mapped_column(String(128), index=True)  # None = any rule
    conditions: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    reason: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    hit_count: Mapped[int] = mapped_column(BigInteger, default=0)
    last_hit_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Incident(Base):
    """An incident; its links, timeline, tasks, evidence and reporting live in soc_api.incidents.models.

    ``severity`` is ``normal`` or ``serious`` (the reporting classes), ``status`` the response phase
    (``detected`` ... ``closed``); both are validated by the incident service, not by constraints,
    so rows from older code paths stay readable.
    """

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    category: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32), default="detected")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now, onupdate=utc_now)
    site: Mapped[str | None] = mapped_column(ForeignKey("sites.code"), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    detected_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now, index=True)
    profile: Mapped[str] = mapped_column(String(64), default="incident-current")
    facts: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    serious_reasons: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    lessons_learned: Mapped[str | None] = mapped_column(Text)
    state_times: Mapped[dict[str, str]] = mapped_column(JsonType, default=dict)  # status -> ISO time entered
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy mapper config


class IncidentAlert(Base):
    __tablename__ = "incident_alerts"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True)


class AuditEntry(Base):
    """Append-only, hash-chained record of every change; see :mod:`soc_api.services.audit`."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False
    )
    ts: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    source_ip: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(128))
    before: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    after: Mapped[dict[str, Any] | None] = mapped_column(JsonType)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    __table_args__ = (Index("ix_audit_log_object_type_object_id", "object_type", "object_id"),)
