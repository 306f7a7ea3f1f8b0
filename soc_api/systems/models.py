"""Tables of the information-systems registry, level dossiers and security-plan tracking."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from soc_api.db.base import Base
from soc_api.db.types import JsonType, UtcDateTime
from soc_common.ecs import utc_now

ORG_KINDS = ("agency", "dedicated_unit", "independent_council", "mps", "mod", "cipher_committee", "mic")
DOSSIER_STATUSES = ("drafting", "submitted", "returned", "appraised", "approved")
PLAN_STATES = ("not_started", "partial", "full")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Organisation(Base):
    """A body that owns, operates, appraises or approves (own units, councils, MPS, MOD...)."""

    __tablename__ = "organisations"
    __table_args__ = (CheckConstraint(_in("kind", ORG_KINDS), name="kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(32), default="agency")
    site: Mapped[str | None] = mapped_column(ForeignKey("sites.code"), index=True)
    contact: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)  # representative, address...
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)


class OrganisationMember(Base):
    """Which users act for an organisation: the appraise/approve checks read this."""

    __tablename__ = "organisation_members"

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)


class InformationSystem(Base):
    __tablename__ = "information_systems"
    __table_args__ = (CheckConstraint(_in("plan_state", PLAN_STATES), name="plan_state"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the soc.system_id of events
    name: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    site: Mapped[str] = mapped_column(ForeignKey("sites.code"), index=True)
    owner_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    operator_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    security_unit_org_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"))
    council_org_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    facts: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)  # levels.LevelFacts
    state_secret: Mapped[bool] = mapped_column(Boolean, default=False)
    admin_procedure_level: Mapped[str | None] = mapped_column(String(64))  # e.g. "dvc-toan-trinh"
    network_zones: Mapped[list[str]] = mapped_column(JsonType, default=list)
    cidrs: Mapped[list[str]] = mapped_column(JsonType, default=list)
    components: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)
    profile: Mapped[str] = mapped_column(String(64), default="current")
    proposed_level: Mapped[int | None] = mapped_column(Integer)
    approved_level: Mapped[int | None] = mapped_column(Integer)
    approved_profile: Mapped[str | None] = mapped_column(String(64))
    approval_decision_no: Mapped[str | None] = mapped_column(String(100))
    approval_decision_date: Mapped[date | None] = mapped_column(Date)
    security_regulation_no: Mapped[str | None] = mapped_column(String(100))
    security_regulation_date: Mapped[date | None] = mapped_column(Date)
    level_review_required: Mapped[bool] = mapped_column(Boolean, default=False)
    level_review_reasons: Mapped[list[str]] = mapped_column(JsonType, default=list)
    plan_state: Mapped[str] = mapped_column(String(16), default="not_started")
    plan_target_date: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now, onupdate=utc_now)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy mapper config


class SystemHost(Base):
    """A host or agent that belongs to a system (one system per host name and per agent)."""

    __tablename__ = "system_hosts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    system_id: Mapped[str] = mapped_column(ForeignKey("information_systems.id", ondelete="CASCADE"), index=True)
    host_name: Mapped[str | None] = mapped_column(String(255), unique=True)  # lower case
    agent_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    ip: Mapped[str | None] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)


class RiskAssessment(Base):
    __tablename__ = "risk_assessments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    system_id: Mapped[str] = mapped_column(ForeignKey("information_systems.id", ondelete="CASCADE"), index=True)
    trigger: Mapped[str] = mapped_column(String(64))
    assessed_on: Mapped[date] = mapped_column(Date)
    assessed_level: Mapped[int | None] = mapped_column(Integer)
    content: Mapped[dict[str, str]] = mapped_column(JsonType, default=dict)  # content item id -> summary
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)


class Dossier(Base):
    """A security-level dossier (hồ sơ đề xuất cấp độ) and its appraisal/approval workflow."""

    __tablename__ = "dossiers"
    __table_args__ = (CheckConstraint(_in("status", DOSSIER_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    system_id: Mapped[str] = mapped_column(ForeignKey("information_systems.id", ondelete="CASCADE"), index=True)
    profile: Mapped[str] = mapped_column(String(64))
    minimum_level: Mapped[int | None] = mapped_column(Integer)  # from the determination
    proposed_level: Mapped[int] = mapped_column(Integer)
    determination: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="drafting", index=True)
    submitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    appraised_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    approved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    returned_reason: Mapped[str | None] = mapped_column(Text)
    appraisal_opinion: Mapped[str | None] = mapped_column(Text)
    appraised_by: Mapped[str | None] = mapped_column(String(64))
    approved_by: Mapped[str | None] = mapped_column(String(64))
    approved_level: Mapped[int | None] = mapped_column(Integer)
    override_reason: Mapped[str | None] = mapped_column(Text)
    decision_no: Mapped[str | None] = mapped_column(String(100))
    decision_date: Mapped[date | None] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now, onupdate=utc_now)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy mapper config


class DossierDocument(Base):
    """One uploaded version of a dossier part; the bytes live content-addressed by SHA-256."""

    __tablename__ = "dossier_documents"
    __table_args__ = (UniqueConstraint("dossier_id", "part", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id", ondelete="CASCADE"), index=True)
    part: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now)


class PlanItem(Base):
    """One requirement group of the security plan, with its deployment state and evidence."""

    __tablename__ = "plan_items"
    __table_args__ = (
        UniqueConstraint("system_id", "group_id"),
        CheckConstraint(_in("state", PLAN_STATES), name="state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    system_id: Mapped[str] = mapped_column(ForeignKey("information_systems.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(String(300))
    state: Mapped[str] = mapped_column(String(16), default="not_started")
    target_date: Mapped[date | None] = mapped_column(Date)
    evidence: Mapped[list[dict[str, str]]] = mapped_column(JsonType, default=list)
    note: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utc_now, onupdate=utc_now)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012 - SQLAlchemy mapper config
