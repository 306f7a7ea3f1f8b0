"""Tables of drill plans, drills, their timelines and the alerts/incidents they produced."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import CheckConstraint, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from soc_api.db.base import Base
from soc_api.db.types import JsonType, UtcDateTime
from soc_common.ecs import utc_now

DRILL_KINDS = ("tabletop", "live", "national")
DRILL_STATUSES = ("planned", "running", "completed", "cancelled")
TIMELINE_PHASES = ("start", "detection", "notification", "containment", "eradication", "recovery", "end", "other")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class DrillPlan(Base):
    """A site's annual drill plan (QCVN 12:2026 §3.18: annual plan with concrete scenarios)."""

    __tablename__ = "drill_plans"
    __table_args__ = (UniqueConstraint("site", "year"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(ForeignKey("sites.code"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(500))
    decision_no: Mapped[str | None] = mapped_column(String(100))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)


class Drill(Base):
    """One drill: planned in a plan, then run and recorded (QCVN 12:2026 §3.18.2.2.5-6)."""

    __tablename__ = "drills"
    __table_args__ = (
        CheckConstraint(_in("kind", DRILL_KINDS), name="kind"),
        CheckConstraint(_in("status", DRILL_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[int | None] = mapped_column(ForeignKey("drill_plans.id", ondelete="SET NULL"), index=True)
    site: Mapped[str] = mapped_column(ForeignKey("sites.code"), index=True)
    title: Mapped[str] = mapped_column(String(500))
    kind: Mapped[str] = mapped_column(String(16))
    scenario: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="planned", index=True)
    planned_on: Mapped[date] = mapped_column(Date)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    system_ids: Mapped[list[str]] = mapped_column(JsonType, default=list)
    participants: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)  # name, team, organisation
    participant_hosts: Mapped[list[str]] = mapped_column(JsonType, default=list)  # lower-case host names
    coordination_findings: Mapped[str] = mapped_column(Text, default="")
    open_gaps: Mapped[list[str]] = mapped_column(JsonType, default=list)
    evaluation: Mapped[str] = mapped_column(Text, default="")
    minutes_filename: Mapped[str | None] = mapped_column(String(255))
    minutes_content_type: Mapped[str | None] = mapped_column(String(128))
    minutes_size: Mapped[int | None] = mapped_column(Integer)
    minutes_sha256: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now, onupdate=utc_now)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy mapper config


class DrillTimelineEntry(Base):
    __tablename__ = "drill_timeline"
    __table_args__ = (CheckConstraint(_in("phase", TIMELINE_PHASES), name="phase"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    drill_id: Mapped[int] = mapped_column(ForeignKey("drills.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    phase: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    team: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(64))


class DrillAlert(Base):
    __tablename__ = "drill_alerts"

    drill_id: Mapped[int] = mapped_column(ForeignKey("drills.id", ondelete="CASCADE"), primary_key=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True, index=True)


class DrillIncident(Base):
    __tablename__ = "drill_incidents"

    drill_id: Mapped[int] = mapped_column(ForeignKey("drills.id", ondelete="CASCADE"), primary_key=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True, index=True
    )
