"""objects (documents), the delivery outbox and sync state

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from evroam.store.tables import Json, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "objects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("module", sa.String(24), nullable=False),
        sa.Column("owner_id", sa.Integer, nullable=False),
        sa.Column("cc_key", sa.String(2), nullable=False),
        sa.Column("pid_key", sa.String(3), nullable=False),
        sa.Column("oid_key", sa.String(39), nullable=False),
        sa.Column("type_key", sa.String(16), nullable=False),
        sa.Column("last_updated", UTCDateTime, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("ref_key", sa.String(5)),
        sa.Column("stale", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(24)),
        sa.Column("note", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_objects"),
        sa.UniqueConstraint("module", "owner_id", "cc_key", "pid_key", "oid_key", "type_key",
                            name="uq_objects_module"),
    )
    op.create_index("ix_objects_listing", "objects", ["module", "owner_id", "last_updated", "id"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("party_id", sa.Integer, nullable=False),
        sa.Column("module", sa.String(24), nullable=False),
        sa.Column("object_pk", sa.Integer, nullable=False),
        sa.Column("method", sa.String(6), nullable=False),
        sa.Column("patch", Json),
        sa.Column("sub_path", sa.String(80)),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("claimed_until", UTCDateTime),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.ForeignKeyConstraint(["party_id"], ["parties.id"], name="fk_outbox_party_id_parties", ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["object_pk"], ["objects.id"], name="fk_outbox_object_pk_objects",
                                ondelete="CASCADE"),
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])
    op.create_index("uq_outbox_pending", "outbox", ["party_id", "object_pk"], unique=True,
                    sqlite_where=sa.text("status = 'PENDING'"), postgresql_where=sa.text("status = 'PENDING'"))
    op.create_table(
        "sync_state",
        sa.Column("party_id", sa.Integer, nullable=False),
        sa.Column("module", sa.String(24), nullable=False),
        sa.Column("last_success_start", UTCDateTime),
        sa.Column("last_attempt_at", UTCDateTime),
        sa.Column("last_error", sa.Text),
        sa.Column("objects_seen", sa.Integer),
        sa.PrimaryKeyConstraint("party_id", "module", name="pk_sync_state"),
        sa.ForeignKeyConstraint(["party_id"], ["parties.id"], name="fk_sync_state_party_id_parties",
                                ondelete="CASCADE"),
    )


def downgrade() -> None:
    op.drop_table("sync_state")
    op.drop_table("outbox")
    op.drop_table("objects")
