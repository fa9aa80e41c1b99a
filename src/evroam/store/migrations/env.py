"""Alembic environment: evroam passes an open connection in `attributes`."""

from __future__ import annotations

from alembic import context

from evroam.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
