"""commands: asynchronous Commands and ChargingProfiles requests, both directions

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from evroam.store.tables import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "commands",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("uid", sa.String(36), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("type", sa.String(24), nullable=False),
        sa.Column("party_id", sa.Integer, nullable=False),
        sa.Column("ref_key", sa.String(36)),
        sa.Column("response_url", sa.String(255), nullable=False),
        sa.Column("request", sa.Text),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("response", sa.String(16)),
        sa.Column("status_code", sa.Integer),
        sa.Column("timeout_s", sa.Integer),
        sa.Column("deadline_at", UTCDateTime),
        sa.Column("result", sa.String(24)),
        sa.Column("result_data", sa.Text),
        sa.Column("result_at", UTCDateTime),
        sa.Column("message", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_commands"),
        sa.UniqueConstraint("uid", name="uq_commands_uid"),
    )
    op.create_index("ix_commands_party_id", "commands", ["party_id"])
    op.create_index("ix_commands_ref", "commands", ["kind", "ref_key"])
    op.create_index("ix_commands_due", "commands", ["state", "deadline_at"])


def downgrade() -> None:
    op.drop_table("commands")
