"""sync_state: pull state per party behind a Hub (owner_cc, owner_pid), and a due reconnect pull

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from evroam.store.tables import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The existing rows are the partners' own: owner ("", "").
    with op.batch_alter_table("sync_state") as batch:
        batch.add_column(sa.Column("owner_cc", sa.String(2), nullable=False, server_default=""))
        batch.add_column(sa.Column("owner_pid", sa.String(3), nullable=False, server_default=""))
        batch.add_column(sa.Column("owner_pull_due_at", UTCDateTime))
        batch.drop_constraint("pk_sync_state", type_="primary")
        batch.create_primary_key("pk_sync_state", ["party_id", "module", "owner_cc", "owner_pid"])


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM sync_state WHERE owner_cc <> '' OR owner_pid <> ''"))
    with op.batch_alter_table("sync_state") as batch:
        batch.drop_constraint("pk_sync_state", type_="primary")
        batch.create_primary_key("pk_sync_state", ["party_id", "module"])
        batch.drop_column("owner_pull_due_at")
        batch.drop_column("owner_pid")
        batch.drop_column("owner_cc")
