"""Incident tables beyond the ``incidents`` row: affected systems and hosts, the timeline, playbook
tasks, evidence files, reporting obligations and archived report documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from soc_api.db.base import Base
from soc_api.db.types import JsonType, UtcDateTime
from soc_common.ecs import utc_now

TASK_STATES = ("todo", "done", "skipped")
OBLIGATION_STATES = ("pending", "sent", "acknowledged")


class IncidentSystem(Base):
    """An information system (registry id) the incident affects."""

    __tablename__ = "incident_systems"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True)
    system_id: Mapped[str] = mapped_column(ForeignKey("information_systems.id"), primary_key=True, index=True)


class IncidentHost(Base):
    __tablename__ = "incident_hosts"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True)
    host_name: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)


class IncidentTimelineEntry(Base):
    """What happened when: automatic entries for every change, and analysts' notes."""

    __tablename__ = "incident_timeline"
    __table_args__ = (Index("ix_incident_timeline_incident_id_id", "incident_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    ts: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    actor: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # "auto" or "note"
    action: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)


class IncidentTask(Base):
    __tablename__ = "incident_tasks"
    __table_args__ = (Index("ix_incident_tasks_incident_id_position", "incident_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    playbook: Mapped[str | None] = mapped_column(String(64))
    step_id: Mapped[str | None] = mapped_column(String(64))
    phase: Mapped[str] = mapped_column(String(32), default="analysing")
    title: Mapped[str] = mapped_column(String(500))
    owner_role: Mapped[str] = mapped_column(String(64), default="")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(16), default="todo")
    note: Mapped[str | None] = mapped_column(Text)
    done_by: Mapped[str | None] = mapped_column(String(64))
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy mapper config


class IncidentEvidence(Base):
    """A file kept as evidence, stored by SHA-256 under the data dir and re-hashed on download."""

    __tablename__ = "incident_evidence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(127))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)


class IncidentObligation(Base):
    """One reporting duty of one incident under its rule profile, with its deadline and state."""

    __tablename__ = "incident_obligations"
    __table_args__ = (UniqueConstraint("incident_id", "obligation_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    obligation_id: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(500))
    recipient: Mapped[str] = mapped_column(String(300), default="")
    source: Mapped[str] = mapped_column(String(300), default="")
    report_kind: Mapped[str] = mapped_column(String(32), default="initial")
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)  # None: no anchor yet
    immediate: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sent_by: Mapped[str | None] = mapped_column(String(64))
    reference: Mapped[str | None] = mapped_column(String(200))  # e.g. official letter number
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    report_id: Mapped[int | None] = mapped_column(ForeignKey("incident_reports.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy mapper config


class IncidentReport(Base):
    """A generated report document, archived by SHA-256 so what was sent can be proven later."""

    __tablename__ = "incident_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # initial, update, closure
    format: Mapped[str] = mapped_column(String(8))  # pdf, docx
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    generated_by: Mapped[str] = mapped_column(String(64))
    generated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
