"""parties: a Hub's ConnectionStatus of each connected platform

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from evroam.store.tables import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("parties") as batch:
        batch.add_column(sa.Column("hub_status", sa.String(16)))
        batch.add_column(sa.Column("hub_status_at", UTCDateTime))


def downgrade() -> None:
    with op.batch_alter_table("parties") as batch:
        batch.drop_column("hub_status_at")
        batch.drop_column("hub_status")
