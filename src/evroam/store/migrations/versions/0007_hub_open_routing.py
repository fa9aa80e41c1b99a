"""objects: lookup by id across owners; hub_routes: routes a Hub learns while forwarding

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

from evroam.store.tables import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Open Routing finds the owner of a broadcast Location or Token the Hub
    # holds by its id alone, whoever pushed it (hub/openrouting.py).
    op.create_index("ix_objects_any_owner", "objects", ["module", "oid_key"])
    op.create_table(
        "hub_routes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("module", sa.String(24), nullable=False),
        sa.Column("ref_key", sa.String(36), nullable=False),
        sa.Column("from_cc", sa.String(2), nullable=False),
        sa.Column("from_pid", sa.String(3), nullable=False),
        sa.Column("to_cc", sa.String(2), nullable=False),
        sa.Column("to_pid", sa.String(3), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_hub_routes"),
        sa.UniqueConstraint("module", "ref_key", "from_cc", "from_pid",
                            name="uq_hub_routes_module_ref_key_from_cc_from_pid"),
    )


def downgrade() -> None:
    op.drop_table("hub_routes")
    op.drop_index("ix_objects_any_owner", "objects")
