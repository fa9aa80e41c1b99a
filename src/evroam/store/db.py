"""Engine creation and migrations."""

from __future__ import annotations

import functools
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).with_name("migrations")


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            # WAL lets the CLI and a serving process share the file.
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            # The driver's own transaction handling starts a transaction only
            # at the first INSERT/UPDATE/DELETE, so a read meant to lock
            # (SELECT … FOR UPDATE, which SQLite does not have) ran outside
            # any transaction: two writers could both read, then both write,
            # and one change was lost. We issue BEGIN ourselves (below).
            dbapi_conn.isolation_level = None

        @event.listens_for(engine.sync_engine, "before_cursor_execute")
        def _sqlite_begin(conn, cursor, statement, _params, context, _many):
            # A transaction takes SQLite's single write lock (BEGIN IMMEDIATE)
            # at its first write or locking read, so read-modify-write cycles
            # serialise as FOR UPDATE does on PostgreSQL. Plain reads before
            # that stay lock-free, so readers never queue behind writers (WAL).
            if (conn.in_transaction() and not conn.connection.driver_connection.in_transaction
                    and _needs_lock(statement, context)):
                cursor.execute("BEGIN IMMEDIATE")

        # Every connection returned to the pool, or closed after reads only,
        # is rolled back, and each commit or rollback is a round trip to the
        # driver's thread. Without an open SQLite transaction (reads only, or
        # already committed) the driver would do nothing (sqlite3 checks the
        # same flag), so the round trip is skipped.
        dialect = engine.sync_engine.dialect
        do_commit, do_rollback = dialect.do_commit, dialect.do_rollback

        def _commit(dbapi_conn) -> None:
            if _sqlite_in_transaction(dbapi_conn):
                do_commit(dbapi_conn)

        def _rollback(dbapi_conn) -> None:
            if _sqlite_in_transaction(dbapi_conn):
                do_rollback(dbapi_conn)

        dialect.do_commit, dialect.do_rollback = _commit, _rollback
        return engine
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+asyncpg://" + url.split("://", 1)[1]
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


# PostgreSQL aborts one transaction of a deadlock (40P01) or of a
# serialization failure (40001); run again, it goes through.
_TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})


def is_transient(exc: BaseException) -> bool:
    """Whether a failed transaction is worth running again as it was."""
    orig = getattr(exc, "orig", None)
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return isinstance(exc, sa.exc.DBAPIError) and code in _TRANSIENT_SQLSTATES


def _sqlite_in_transaction(dbapi_conn) -> bool:
    """Whether SQLite has a transaction open on this (pooled or adapted)
    connection; True when that cannot be told, so the driver is asked."""
    try:
        return bool(dbapi_conn.driver_connection.in_transaction)
    except Exception:
        return True


def _needs_lock(statement: str, context: object) -> bool:
    head = statement.lstrip()[:6].upper()
    if head == "PRAGMA":
        return False
    if head != "SELECT":
        return True  # INSERT, UPDATE, DELETE, SAVEPOINT, DDL, WITH …
    compiled = getattr(context, "compiled", None)
    return getattr(getattr(compiled, "statement", None), "_for_update_arg", None) is not None


def _alembic_config(connection: sa.Connection) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


async def migrate(engine: AsyncEngine) -> None:
    """Apply every pending migration (run on start)."""

    def _upgrade(conn: sa.Connection) -> None:
        command.upgrade(_alembic_config(conn), "head")

    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)


@functools.cache
def head_revision() -> str | None:
    """The newest migration this code ships (read once per process)."""
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


async def applied_revision(engine: AsyncEngine) -> str | None:
    """The migration the database is at; None for a database never migrated.
    Raises when the database does not answer."""
    from alembic.runtime.migration import MigrationContext

    async with engine.connect() as conn:
        return await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())
