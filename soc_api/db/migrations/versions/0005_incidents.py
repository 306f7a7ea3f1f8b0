"""Incidents (links, timeline, playbook tasks, evidence, reporting obligations, reports) and the
notification outbox.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# JSONB on PostgreSQL, JSON text on SQLite (as soc_api.db.types.JsonType).
JSON_T = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def _extend_incidents() -> None:
    """New incident columns; rows written by older code get defaults (status "open" -> "detected")."""
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("site", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("description", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(sa.Column("detected_at", TS, nullable=True))
        batch_op.add_column(
            sa.Column("profile", sa.String(length=64), nullable=False, server_default="incident-current")
        )
        batch_op.add_column(sa.Column("facts", JSON_T, nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("serious_reasons", JSON_T, nullable=False, server_default="[]"))
        batch_op.add_column(sa.Column("assignee_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("lessons_learned", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("state_times", JSON_T, nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("closed_at", TS, nullable=True))
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
    op.execute("UPDATE incidents SET detected_at = created_at WHERE detected_at IS NULL")
    op.execute("UPDATE incidents SET status = 'detected' WHERE status = 'open'")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.alter_column("detected_at", existing_type=TS, nullable=False)
        batch_op.create_index(batch_op.f("ix_incidents_assignee_id"), ["assignee_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_incidents_detected_at"), ["detected_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_incidents_site"), ["site"], unique=False)
        batch_op.create_foreign_key(batch_op.f("fk_incidents_site_sites"), "sites", ["site"], ["code"])
        batch_op.create_foreign_key(batch_op.f("fk_incidents_assignee_id_users"), "users", ["assignee_id"], ["id"])


def upgrade() -> None:
    op.create_table(
        "notification_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("dedup_key", sa.String(length=300), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("payload", JSON_T, nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification_outbox")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_notification_outbox_dedup_key")),
    )
    with op.batch_alter_table("notification_outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notification_outbox_state_next_attempt_at", ["state", "next_attempt_at"], unique=False
        )

    op.create_table(
        "notification_watermarks",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("at", TS, nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_notification_watermarks")),
    )
    op.create_table(
        "incident_evidence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=127), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("uploaded_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_evidence_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_evidence")),
    )
    with op.batch_alter_table("incident_evidence", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incident_evidence_incident_id"), ["incident_id"], unique=False)

    op.create_table(
        "incident_hosts",
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("host_name", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_incident_hosts_incident_id_incidents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("incident_id", "host_name", name=op.f("pk_incident_hosts")),
    )
    with op.batch_alter_table("incident_hosts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incident_hosts_host_name"), ["host_name"], unique=False)

    op.create_table(
        "incident_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("format", sa.String(length=8), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("generated_by", sa.String(length=64), nullable=False),
        sa.Column("generated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_reports_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_reports")),
    )
    with op.batch_alter_table("incident_reports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incident_reports_incident_id"), ["incident_id"], unique=False)

    op.create_table(
        "incident_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("playbook", sa.String(length=64), nullable=True),
        sa.Column("step_id", sa.String(length=64), nullable=True),
        sa.Column("phase", sa.String(length=32), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("owner_role", sa.String(length=64), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("done_by", sa.String(length=64), nullable=True),
        sa.Column("done_at", TS, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["assignee_id"], ["users.id"], name=op.f("fk_incident_tasks_assignee_id_users")),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_incident_tasks_incident_id_incidents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_tasks")),
    )
    with op.batch_alter_table("incident_tasks", schema=None) as batch_op:
        batch_op.create_index("ix_incident_tasks_incident_id_position", ["incident_id", "position"], unique=False)

    op.create_table(
        "incident_timeline",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("ts", TS, nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("data", JSON_T, nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_timeline_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_timeline")),
    )
    with op.batch_alter_table("incident_timeline", schema=None) as batch_op:
        batch_op.create_index("ix_incident_timeline_incident_id_id", ["incident_id", "id"], unique=False)

    op.create_table(
        "incident_obligations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("obligation_id", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("recipient", sa.String(length=300), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("report_kind", sa.String(length=32), nullable=False),
        sa.Column("due_at", TS, nullable=True),
        sa.Column("immediate", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("sent_by", sa.String(length=64), nullable=True),
        sa.Column("reference", sa.String(length=200), nullable=True),
        sa.Column("acknowledged_at", TS, nullable=True),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_obligations_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["report_id"], ["incident_reports.id"], name=op.f("fk_incident_obligations_report_id_incident_reports")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_obligations")),
        sa.UniqueConstraint(
            "incident_id", "obligation_id", name=op.f("uq_incident_obligations_incident_id_obligation_id")
        ),
    )
    with op.batch_alter_table("incident_obligations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incident_obligations_due_at"), ["due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_incident_obligations_incident_id"), ["incident_id"], unique=False)

    op.create_table(
        "incident_systems",
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("system_id", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_systems_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["system_id"], ["information_systems.id"], name=op.f("fk_incident_systems_system_id_information_systems")
        ),
        sa.PrimaryKeyConstraint("incident_id", "system_id", name=op.f("pk_incident_systems")),
    )
    with op.batch_alter_table("incident_systems", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_incident_systems_system_id"), ["system_id"], unique=False)

    _extend_incidents()


def downgrade() -> None:

    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_incidents_assignee_id_users"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_incidents_site_sites"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_incidents_site"))
        batch_op.drop_index(batch_op.f("ix_incidents_detected_at"))
        batch_op.drop_index(batch_op.f("ix_incidents_assignee_id"))
        batch_op.drop_column("version")
        batch_op.drop_column("closed_at")
        batch_op.drop_column("state_times")
        batch_op.drop_column("lessons_learned")
        batch_op.drop_column("assignee_id")
        batch_op.drop_column("serious_reasons")
        batch_op.drop_column("facts")
        batch_op.drop_column("profile")
        batch_op.drop_column("detected_at")
        batch_op.drop_column("description")
        batch_op.drop_column("site")

    with op.batch_alter_table("incident_systems", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_systems_system_id"))

    op.drop_table("incident_systems")
    with op.batch_alter_table("incident_obligations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_obligations_incident_id"))
        batch_op.drop_index(batch_op.f("ix_incident_obligations_due_at"))

    op.drop_table("incident_obligations")
    with op.batch_alter_table("incident_timeline", schema=None) as batch_op:
        batch_op.drop_index("ix_incident_timeline_incident_id_id")

    op.drop_table("incident_timeline")
    with op.batch_alter_table("incident_tasks", schema=None) as batch_op:
        batch_op.drop_index("ix_incident_tasks_incident_id_position")

    op.drop_table("incident_tasks")
    with op.batch_alter_table("incident_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_reports_incident_id"))

    op.drop_table("incident_reports")
    with op.batch_alter_table("incident_hosts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_hosts_host_name"))

    op.drop_table("incident_hosts")
    with op.batch_alter_table("incident_evidence", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_incident_evidence_incident_id"))

    op.drop_table("incident_evidence")
    op.drop_table("notification_watermarks")
    with op.batch_alter_table("notification_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_notification_outbox_state_next_attempt_at")

    op.drop_table("notification_outbox")
