"""objects: indexes for the Sender's lookups by id and its pages

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A Sender GET one has no cc/pid in its URL, so the unique key (which has
    # them before oid_key) cannot serve it: without this index the lookup
    # scanned every object of the module. `id` last: the lowest pk wins.
    op.create_index("ix_objects_oid", "objects", ["module", "owner_id", "oid_key", "id"])
    # A Sender page: live objects in creation order, and their count, from
    # the index alone.
    op.create_index("ix_objects_page", "objects", ["module", "owner_id", "stale", "id"])


def downgrade() -> None:
    op.drop_index("ix_objects_page", "objects")
    op.drop_index("ix_objects_oid", "objects")
