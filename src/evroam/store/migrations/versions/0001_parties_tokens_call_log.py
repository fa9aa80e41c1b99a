"""parties, party tokens and the call log

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from evroam.store.tables import Json, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "parties",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("initiated_by_us", sa.Boolean, nullable=False),
        sa.Column("versions_url", sa.String(255)),
        sa.Column("version", sa.String(8)),
        sa.Column("endpoints", Json),
        sa.Column("roles", Json),
        sa.Column("token_out", sa.String(64)),
        sa.Column("allow_raw_token", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_parties"),
        sa.UniqueConstraint("name", name="uq_parties_name"),
    )
    op.create_table(
        "party_tokens",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("party_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("token_hash", name="pk_party_tokens"),
        sa.ForeignKeyConstraint(["party_id"], ["parties.id"], name="fk_party_tokens_party_id_parties", ondelete="CASCADE"),
    )
    op.create_index("ix_party_tokens_party_id", "party_tokens", ["party_id"])
    op.create_table(
        "call_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("party_id", sa.Integer),
        sa.Column("method", sa.String(8), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("http_status", sa.Integer),
        sa.Column("ocpi_status", sa.Integer),
        sa.Column("duration_ms", sa.Float, nullable=False),
        sa.Column("request_id", sa.String(64)),
        sa.Column("correlation_id", sa.String(64)),
        sa.Column("request_body", sa.Text),
        sa.Column("response_body", sa.Text),
        sa.Column("error", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_call_log"),
    )
    op.create_index("ix_call_log_at", "call_log", ["at"])
    op.create_index("ix_call_log_party_id", "call_log", ["party_id"])


def downgrade() -> None:
    op.drop_table("call_log")
    op.drop_table("party_tokens")
    op.drop_table("parties")
