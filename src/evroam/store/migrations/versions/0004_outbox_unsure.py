"""outbox.unsure: a delivery whose last attempt may have reached the partner

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN: SQLite supports it without rebuilding the table
    # (a rebuild would have to carry the partial unique index along).
    op.add_column("outbox", sa.Column("unsure", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("unsure")
