"""Information systems registry, organisations, level dossiers, documents, risk assessments, plan items.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# JSONB on PostgreSQL, JSON text on SQLite (as soc_api.db.types.JsonType).
JSON_T = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=True),
        sa.Column("contact", JSON_T, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('agency', 'dedicated_unit', 'independent_council', 'mps', 'mod', 'cipher_committee', 'mic')",
            name=op.f("ck_organisations_kind"),
        ),
        sa.ForeignKeyConstraint(["site"], ["sites.code"], name=op.f("fk_organisations_site_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        sa.UniqueConstraint("code", name=op.f("uq_organisations_code")),
    )
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_organisations_site"), ["site"], unique=False)

    op.create_table(
        "information_systems",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("owner_org_id", sa.Integer(), nullable=False),
        sa.Column("operator_org_id", sa.Integer(), nullable=False),
        sa.Column("security_unit_org_id", sa.Integer(), nullable=False),
        sa.Column("council_org_id", sa.Integer(), nullable=True),
        sa.Column("facts", JSON_T, nullable=False),
        sa.Column("state_secret", sa.Boolean(), nullable=False),
        sa.Column("admin_procedure_level", sa.String(length=64), nullable=True),
        sa.Column("network_zones", JSON_T, nullable=False),
        sa.Column("cidrs", JSON_T, nullable=False),
        sa.Column("components", JSON_T, nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("proposed_level", sa.Integer(), nullable=True),
        sa.Column("approved_level", sa.Integer(), nullable=True),
        sa.Column("approved_profile", sa.String(length=64), nullable=True),
        sa.Column("approval_decision_no", sa.String(length=100), nullable=True),
        sa.Column("approval_decision_date", sa.Date(), nullable=True),
        sa.Column("security_regulation_no", sa.String(length=100), nullable=True),
        sa.Column("security_regulation_date", sa.Date(), nullable=True),
        sa.Column("level_review_required", sa.Boolean(), nullable=False),
        sa.Column("level_review_reasons", JSON_T, nullable=False),
        sa.Column("plan_state", sa.String(length=16), nullable=False),
        sa.Column("plan_target_date", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "plan_state IN ('not_started', 'partial', 'full')", name=op.f("ck_information_systems_plan_state")
        ),
        sa.ForeignKeyConstraint(
            ["council_org_id"], ["organisations.id"], name=op.f("fk_information_systems_council_org_id_organisations")
        ),
        sa.ForeignKeyConstraint(
            ["operator_org_id"], ["organisations.id"], name=op.f("fk_information_systems_operator_org_id_organisations")
        ),
        sa.ForeignKeyConstraint(
            ["owner_org_id"], ["organisations.id"], name=op.f("fk_information_systems_owner_org_id_organisations")
        ),
        sa.ForeignKeyConstraint(
            ["security_unit_org_id"],
            ["organisations.id"],
            name=op.f("fk_information_systems_security_unit_org_id_organisations"),
        ),
        sa.ForeignKeyConstraint(["site"], ["sites.code"], name=op.f("fk_information_systems_site_sites")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_information_systems")),
    )
    with op.batch_alter_table("information_systems", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_information_systems_site"), ["site"], unique=False)

    op.create_table(
        "organisation_members",
        sa.Column("organisation_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_organisation_members_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_organisation_members_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("organisation_id", "user_id", name=op.f("pk_organisation_members")),
    )
    with op.batch_alter_table("organisation_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_organisation_members_user_id"), ["user_id"], unique=False)

    op.create_table(
        "dossiers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system_id", sa.String(length=64), nullable=False),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("minimum_level", sa.Integer(), nullable=True),
        sa.Column("proposed_level", sa.Integer(), nullable=False),
        sa.Column("determination", JSON_T, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("appraised_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("returned_reason", sa.Text(), nullable=True),
        sa.Column("appraisal_opinion", sa.Text(), nullable=True),
        sa.Column("appraised_by", sa.String(length=64), nullable=True),
        sa.Column("approved_by", sa.String(length=64), nullable=True),
        sa.Column("approved_level", sa.Integer(), nullable=True),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.Column("decision_no", sa.String(length=100), nullable=True),
        sa.Column("decision_date", sa.Date(), nullable=True),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "status IN ('drafting', 'submitted', 'returned', 'appraised', 'approved')", name=op.f("ck_dossiers_status")
        ),
        sa.ForeignKeyConstraint(
            ["system_id"],
            ["information_systems.id"],
            name=op.f("fk_dossiers_system_id_information_systems"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dossiers")),
    )
    with op.batch_alter_table("dossiers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dossiers_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_dossiers_system_id"), ["system_id"], unique=False)

    op.create_table(
        "plan_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system_id", sa.String(length=64), nullable=False),
        sa.Column("group_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("target_date", sa.Date(), nullable=True),
        sa.Column("evidence", JSON_T, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.CheckConstraint("state IN ('not_started', 'partial', 'full')", name=op.f("ck_plan_items_state")),
        sa.ForeignKeyConstraint(
            ["system_id"],
            ["information_systems.id"],
            name=op.f("fk_plan_items_system_id_information_systems"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_items")),
        sa.UniqueConstraint("system_id", "group_id", name=op.f("uq_plan_items_system_id_group_id")),
    )
    with op.batch_alter_table("plan_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plan_items_system_id"), ["system_id"], unique=False)

    op.create_table(
        "risk_assessments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system_id", sa.String(length=64), nullable=False),
        sa.Column("trigger", sa.String(length=64), nullable=False),
        sa.Column("assessed_on", sa.Date(), nullable=False),
        sa.Column("assessed_level", sa.Integer(), nullable=True),
        sa.Column("content", JSON_T, nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["system_id"],
            ["information_systems.id"],
            name=op.f("fk_risk_assessments_system_id_information_systems"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_assessments")),
    )
    with op.batch_alter_table("risk_assessments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_risk_assessments_system_id"), ["system_id"], unique=False)

    op.create_table(
        "system_hosts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("system_id", sa.String(length=64), nullable=False),
        sa.Column("host_name", sa.String(length=255), nullable=True),
        sa.Column("agent_id", sa.String(length=64), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("role", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["system_id"],
            ["information_systems.id"],
            name=op.f("fk_system_hosts_system_id_information_systems"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_system_hosts")),
        sa.UniqueConstraint("agent_id", name=op.f("uq_system_hosts_agent_id")),
        sa.UniqueConstraint("host_name", name=op.f("uq_system_hosts_host_name")),
    )
    with op.batch_alter_table("system_hosts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_system_hosts_system_id"), ["system_id"], unique=False)

    op.create_table(
        "dossier_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("dossier_id", sa.Integer(), nullable=False),
        sa.Column("part", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=128), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("uploaded_by", sa.String(length=64), nullable=False),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dossier_id"], ["dossiers.id"], name=op.f("fk_dossier_documents_dossier_id_dossiers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dossier_documents")),
        sa.UniqueConstraint("dossier_id", "part", "version", name=op.f("uq_dossier_documents_dossier_id_part_version")),
    )
    with op.batch_alter_table("dossier_documents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dossier_documents_dossier_id"), ["dossier_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_dossier_documents_sha256"), ["sha256"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dossier_documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dossier_documents_sha256"))
        batch_op.drop_index(batch_op.f("ix_dossier_documents_dossier_id"))

    op.drop_table("dossier_documents")
    with op.batch_alter_table("system_hosts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_system_hosts_system_id"))

    op.drop_table("system_hosts")
    with op.batch_alter_table("risk_assessments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_risk_assessments_system_id"))

    op.drop_table("risk_assessments")
    with op.batch_alter_table("plan_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plan_items_system_id"))

    op.drop_table("plan_items")
    with op.batch_alter_table("dossiers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dossiers_system_id"))
        batch_op.drop_index(batch_op.f("ix_dossiers_status"))

    op.drop_table("dossiers")
    with op.batch_alter_table("organisation_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_organisation_members_user_id"))

    op.drop_table("organisation_members")
    with op.batch_alter_table("information_systems", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_information_systems_site"))

    op.drop_table("information_systems")
    with op.batch_alter_table("organisations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_organisations_site"))

    op.drop_table("organisations")
