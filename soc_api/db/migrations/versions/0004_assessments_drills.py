"""Assessments, findings, improvement actions, drill plans and drills, declared assets, notifications.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# JSONB on PostgreSQL, JSON text on SQLite (as soc_api.db.types.JsonType).
JSON_T = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "drill_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("decision_no", sa.String(length=100), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["site"], ["sites.code"], name=op.f("fk_drill_plans_site_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drill_plans")),
        sa.UniqueConstraint("site", "year", name=op.f("uq_drill_plans_site_year")),
    )
    with op.batch_alter_table("drill_plans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_drill_plans_site"), ["site"], unique=False)

    op.create_table(
        "kpi_declared_assets",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("pcs", sa.Integer(), nullable=False),
        sa.Column("servers", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(length=64), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(["site"], ["sites.code"], name=op.f("fk_kpi_declared_assets_site_sites")),
        sa.PrimaryKeyConstraint("site", name=op.f("pk_kpi_declared_assets")),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("dedup_key", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("read_at", TS, nullable=True),
        sa.Column("emailed_at", TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_notifications_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("user_id", "dedup_key", name=op.f("uq_notifications_user_id_dedup_key")),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notifications_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_notifications_user_id"), ["user_id"], unique=False)

    op.create_table(
        "drills",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=True),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("scenario", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("planned_on", sa.Date(), nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("system_ids", JSON_T, nullable=False),
        sa.Column("participants", JSON_T, nullable=False),
        sa.Column(
            "participant_hosts",
            JSON_T,
            nullable=False,
        ),
        sa.Column("coordination_findings", sa.Text(), nullable=False),
        sa.Column("open_gaps", JSON_T, nullable=False),
        sa.Column("evaluation", sa.Text(), nullable=False),
        sa.Column("minutes_filename", sa.String(length=255), nullable=True),
        sa.Column("minutes_content_type", sa.String(length=128), nullable=True),
        sa.Column("minutes_size", sa.Integer(), nullable=True),
        sa.Column("minutes_sha256", sa.String(length=64), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("kind IN ('tabletop', 'live', 'national')", name=op.f("ck_drills_kind")),
        sa.CheckConstraint("status IN ('planned', 'running', 'completed', 'cancelled')", name=op.f("ck_drills_status")),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["drill_plans.id"], name=op.f("fk_drills_plan_id_drill_plans"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["site"], ["sites.code"], name=op.f("fk_drills_site_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drills")),
    )
    with op.batch_alter_table("drills", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_drills_plan_id"), ["plan_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_drills_site"), ["site"], unique=False)
        batch_op.create_index(batch_op.f("ix_drills_status"), ["status"], unique=False)

    op.create_table(
        "assessments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=True),
        sa.Column("independent", sa.Boolean(), nullable=False),
        sa.Column("assessor_org_id", sa.Integer(), nullable=True),
        sa.Column("assessor_name", sa.String(length=300), nullable=False),
        sa.Column("performed_on", sa.Date(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('compliance', 'effectiveness', 'vulnerability_scan', 'penetration_test')",
            name=op.f("ck_assessments_kind"),
        ),
        sa.CheckConstraint(
            "mode IS NULL OR mode IN ('black_box', 'grey_box', 'white_box')", name=op.f("ck_assessments_mode")
        ),
        sa.CheckConstraint("phase IN ('pre_go_live', 'periodic', 'ad_hoc')", name=op.f("ck_assessments_phase")),
        sa.ForeignKeyConstraint(
            ["assessor_org_id"], ["organisations.id"], name=op.f("fk_assessments_assessor_org_id_organisations")
        ),
        sa.ForeignKeyConstraint(
            ["system_id"],
            ["information_systems.id"],
            name=op.f("fk_assessments_system_id_information_systems"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessments")),
    )
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_assessments_system_id_kind_performed_on", ["system_id", "kind", "performed_on"], unique=False
        )

    op.create_table(
        "drill_alerts",
        sa.Column("drill_id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_drill_alerts_alert_id_alerts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["drill_id"], ["drills.id"], name=op.f("fk_drill_alerts_drill_id_drills"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("drill_id", "alert_id", name=op.f("pk_drill_alerts")),
    )
    with op.batch_alter_table("drill_alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_drill_alerts_alert_id"), ["alert_id"], unique=False)

    op.create_table(
        "drill_incidents",
        sa.Column("drill_id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["drill_id"], ["drills.id"], name=op.f("fk_drill_incidents_drill_id_drills"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_drill_incidents_incident_id_incidents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("drill_id", "incident_id", name=op.f("pk_drill_incidents")),
    )
    with op.batch_alter_table("drill_incidents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_drill_incidents_incident_id"), ["incident_id"], unique=False)

    op.create_table(
        "drill_timeline",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("drill_id", sa.Integer(), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("team", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "phase IN ('start', 'detection', 'notification', 'containment', 'eradication', 'recovery', 'end', 'other')",
            name=op.f("ck_drill_timeline_phase"),
        ),
        sa.ForeignKeyConstraint(
            ["drill_id"], ["drills.id"], name=op.f("fk_drill_timeline_drill_id_drills"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drill_timeline")),
    )
    with op.batch_alter_table("drill_timeline", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_drill_timeline_drill_id"), ["drill_id"], unique=False)

    op.create_table(
        "assessment_findings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("assessment_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.CheckConstraint(
            "severity IN ('informational', 'low', 'medium', 'high', 'critical')",
            name=op.f("ck_assessment_findings_severity"),
        ),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            ["assessments.id"],
            name=op.f("fk_assessment_findings_assessment_id_assessments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessment_findings")),
    )
    with op.batch_alter_table("assessment_findings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_assessment_findings_assessment_id"), ["assessment_id"], unique=False)

    op.create_table(
        "improvement_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_type", sa.String(length=16), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("finding_id", sa.Integer(), nullable=True),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("closed_on", sa.Date(), nullable=True),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.Column("closure_note", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("source_type IN ('assessment', 'drill')", name=op.f("ck_improvement_actions_source_type")),
        sa.ForeignKeyConstraint(
            ["finding_id"],
            ["assessment_findings.id"],
            name=op.f("fk_improvement_actions_finding_id_assessment_findings"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(["site"], ["sites.code"], name=op.f("fk_improvement_actions_site_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_improvement_actions")),
    )
    with op.batch_alter_table("improvement_actions", schema=None) as batch_op:
        batch_op.create_index("ix_improvement_actions_closed_on_due_date", ["closed_on", "due_date"], unique=False)
        batch_op.create_index(batch_op.f("ix_improvement_actions_site"), ["site"], unique=False)
        batch_op.create_index(
            "ix_improvement_actions_source_type_source_id", ["source_type", "source_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("improvement_actions", schema=None) as batch_op:
        batch_op.drop_index("ix_improvement_actions_source_type_source_id")
        batch_op.drop_index(batch_op.f("ix_improvement_actions_site"))
        batch_op.drop_index("ix_improvement_actions_closed_on_due_date")

    op.drop_table("improvement_actions")
    with op.batch_alter_table("assessment_findings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_assessment_findings_assessment_id"))

    op.drop_table("assessment_findings")
    with op.batch_alter_table("drill_timeline", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_drill_timeline_drill_id"))

    op.drop_table("drill_timeline")
    with op.batch_alter_table("drill_incidents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_drill_incidents_incident_id"))

    op.drop_table("drill_incidents")
    with op.batch_alter_table("drill_alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_drill_alerts_alert_id"))

    op.drop_table("drill_alerts")
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        batch_op.drop_index("ix_assessments_system_id_kind_performed_on")

    op.drop_table("assessments")
    with op.batch_alter_table("drills", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_drills_status"))
        batch_op.drop_index(batch_op.f("ix_drills_site"))
        batch_op.drop_index(batch_op.f("ix_drills_plan_id"))

    op.drop_table("drills")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notifications_user_id"))
        batch_op.drop_index(batch_op.f("ix_notifications_created_at"))

    op.drop_table("notifications")
    op.drop_table("kpi_declared_assets")
    with op.batch_alter_table("drill_plans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_drill_plans_site"))

    op.drop_table("drill_plans")
