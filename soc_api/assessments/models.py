"""Tables of assessments, their findings, and improvement actions (from assessments and drills)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from soc_api.db.base import Base
from soc_api.db.types import UtcDateTime
from soc_common.ecs import utc_now

ASSESSMENT_KINDS = ("compliance", "effectiveness", "vulnerability_scan", "penetration_test")
ASSESSMENT_PHASES = ("pre_go_live", "periodic", "ad_hoc")
TEST_MODES = ("black_box", "grey_box", "white_box")
FINDING_SEVERITIES = ("informational", "low", "medium", "high", "critical")
ACTION_SOURCES = ("assessment", "drill")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Assessment(Base):
    """One assessment of one system (NĐ 331 Art 27: compliance, effectiveness, vuln/pentest)."""

    __tablename__ = "assessments"
    __table_args__ = (
        CheckConstraint(_in("kind", ASSESSMENT_KINDS), name="kind"),
        CheckConstraint(_in("phase", ASSESSMENT_PHASES), name="phase"),
        CheckConstraint(f"mode IS NULL OR {_in('mode', TEST_MODES)}", name="mode"),
        Index("ix_assessments_system_id_kind_performed_on", "system_id", "kind", "performed_on"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    system_id: Mapped[str] = mapped_column(ForeignKey("information_systems.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    phase: Mapped[str] = mapped_column(String(16), default="periodic")
    mode: Mapped[str | None] = mapped_column(String(16))
    independent: Mapped[bool] = mapped_column(Boolean, default=False)
    assessor_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    assessor_name: Mapped[str] = mapped_column(String(300), default="")
    performed_on: Mapped[date] = mapped_column(Date)
    summary: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now, onupdate=utc_now)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy mapper config


class AssessmentFinding(Base):
    __tablename__ = "assessment_findings"
    __table_args__ = (CheckConstraint(_in("severity", FINDING_SEVERITIES), name="severity"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessments.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(500))
    severity: Mapped[str] = mapped_column(String(16))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)


class ImprovementAction(Base):
    """A remediation (assessment finding) or improvement (drill) action, tracked to closure.

    One table for both sources, so "overdue actions" is one query for KPIs and reminders; ``site``
    is copied from the source so site scoping needs no join.
    """

    __tablename__ = "improvement_actions"
    __table_args__ = (
        CheckConstraint(_in("source_type", ACTION_SOURCES), name="source_type"),
        Index("ix_improvement_actions_source_type_source_id", "source_type", "source_id"),
        Index("ix_improvement_actions_closed_on_due_date", "closed_on", "due_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_type: Mapped[str] = mapped_column(String(16))
    source_id: Mapped[int] = mapped_column(Integer)
    finding_id: Mapped[int | None] = mapped_column(ForeignKey("assessment_findings.id", ondelete="SET NULL"))
    site: Mapped[str] = mapped_column(ForeignKey("sites.code"), index=True)
    title: Mapped[str] = mapped_column(String(500))
    owner: Mapped[str] = mapped_column(String(200))
    due_date: Mapped[date] = mapped_column(Date)
    closed_on: Mapped[date | None] = mapped_column(Date)
    closed_by: Mapped[str | None] = mapped_column(String(64))
    closure_note: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now, onupdate=utc_now)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy mapper config

    def overdue(self, today: date) -> bool:
        return self.closed_on is None and today > self.due_date
