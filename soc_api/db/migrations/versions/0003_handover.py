"""Hand-over: per-site sequence counters, outbox, receipts, public keys, STIX objects for TAXII.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# JSONB on PostgreSQL, JSON text on SQLite (as soc_api.db.types.JsonType).
JSON_T = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "handover_sequences",
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("site", name=op.f("pk_handover_sequences")),
    )
    op.create_table(
        "handover_outbox",
        sa.Column("package_id", sa.String(length=36), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=128), nullable=True),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("document", JSON_T, nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("acknowledged_at", TS, nullable=True),
        sa.CheckConstraint(
            "status IN ('queued', 'sent', 'acknowledged', 'failed')", name=op.f("ck_handover_outbox_status")
        ),
        sa.PrimaryKeyConstraint("package_id", name=op.f("pk_handover_outbox")),
        sa.UniqueConstraint("site", "sequence", name=op.f("uq_handover_outbox_site_sequence")),
    )
    with op.batch_alter_table("handover_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_handover_outbox_created_at"), ["created_at"], unique=False)
        batch_op.create_index("ix_handover_outbox_status_next_attempt_at", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_handover_outbox_subject"), ["subject"], unique=False)
        batch_op.create_index(batch_op.f("ix_handover_outbox_type"), ["type"], unique=False)
    op.create_table(
        "handover_receipts",
        sa.Column("package_id", sa.String(length=36), nullable=False),
        sa.Column("receipt_id", sa.String(length=64), nullable=False),
        sa.Column("receipt", JSON_T, nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("stored_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["package_id"],
            ["handover_outbox.package_id"],
            name=op.f("fk_handover_receipts_package_id_handover_outbox"),
        ),
        sa.PrimaryKeyConstraint("package_id", name=op.f("pk_handover_receipts")),
    )
    op.create_table(
        "handover_keys",
        sa.Column("kid", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("valid_from", TS, nullable=False),
        sa.Column("valid_until", TS, nullable=True),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_handover_keys")),
    )
    op.create_table(
        "handover_stix_objects",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("collection", sa.String(length=64), nullable=False),
        sa.Column("stix_id", sa.String(length=128), nullable=False),
        sa.Column("stix_type", sa.String(length=64), nullable=False),
        sa.Column("modified", sa.String(length=32), nullable=False),
        sa.Column("date_added", TS, nullable=False),
        sa.Column("object", JSON_T, nullable=False),
        sa.Column("package_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handover_stix_objects")),
        sa.UniqueConstraint(
            "collection", "stix_id", "modified", name=op.f("uq_handover_stix_objects_collection_stix_id_modified")
        ),
    )
    with op.batch_alter_table("handover_stix_objects", schema=None) as batch_op:
        batch_op.create_index(
            "ix_handover_stix_objects_collection_date_added_id", ["collection", "date_added", "id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_handover_stix_objects_stix_id"), ["stix_id"], unique=False)


def downgrade() -> None:
    op.drop_table("handover_stix_objects")
    op.drop_table("handover_keys")
    op.drop_table("handover_receipts")
    op.drop_table("handover_outbox")
    op.drop_table("handover_sequences")
