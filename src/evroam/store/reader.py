"""Point reads for the Sender's hot path, below SQLAlchemy.

One statement checks the presented token (with its partner) and reads the
object asked for: the token is judged against the database on every
request, so a token rotated or removed by any process sharing the database
is refused at once, and nothing about tokens is cached here.

SQLite: a synchronous, read-only connection in the event loop's own thread.
An indexed point read in WAL mode takes microseconds, far less than the hop
to aiosqlite's thread; it never waits for a lock (timeout 0), and when the
database is busy the caller takes the ordinary path instead (`None`).
PostgreSQL: asyncpg's own pool and prepared statement, without the
per-statement work of SQLAlchemy and its pre-ping per checkout.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import urllib.parse
from dataclasses import dataclass

from sqlalchemy.engine import URL

from evroam.ocpi.headers import parse_authorization
from evroam.store.parties import hash_token
from evroam.store.tables import OURS

_CACHE_MAX = 4096


@dataclass(frozen=True, slots=True)
class TokenRow:
    """A stored token that matched, its partner, and the object read with it."""

    token_hash: str
    kind: str
    party_id: int
    party_name: str
    party_status: str
    allow_raw_token: bool
    roles: str | None  # as stored (JSON text): also the key of what is derived from it
    party_updated: object  # the partner row's updated_at: when what is cached of it is stale
    data: str | None  # the object's document; None when there is none


_COLUMNS = ("t.token_hash, t.kind, p.id, p.name, p.status, p.allow_raw_token, p.roles, p.updated_at, "
            "(SELECT o.data FROM objects o WHERE o.module = {m} AND o.owner_id = {owner} AND o.oid_key = {oid} "
            "ORDER BY o.id LIMIT 1) "
            "FROM party_tokens t JOIN parties p ON p.id = t.party_id WHERE t.token_hash IN ({h0}, {h1})")
SQLITE_SQL = "SELECT " + _COLUMNS.format(m="?", owner=OURS, oid="?", h0="?", h1="?")
# roles::text: JSONB as the text PostgreSQL keeps, without asyncpg decoding it.
PG_SQL = "SELECT " + _COLUMNS.format(m="$1", owner=OURS, oid="$2", h0="$3", h1="$4").replace(
    "p.roles,", "p.roles::text,")


class TokenHashes:
    """The hashes an Authorization value may match, computed once per value:
    hash -> whether it is the raw form (store/parties.authenticate's rule)."""

    def __init__(self) -> None:
        self._by_value: dict[bytes, dict[str, bool]] = {}

    def of(self, auth: bytes | None) -> dict[str, bool]:
        if auth is None:
            return {}
        found = self._by_value.get(auth)
        if found is None:
            decoded, raw = parse_authorization(auth.decode("latin-1"))
            found = {}
            if decoded:
                found[hash_token(decoded)] = False
            if raw and raw != decoded:
                found.setdefault(hash_token(raw), True)
            if len(self._by_value) >= _CACHE_MAX:
                self._by_value.clear()  # only values nobody sends twice get here
            self._by_value[auth] = found
        return found


def honoured(rows: list[TokenRow], candidates: dict[str, bool]) -> TokenRow | None:
    """The matching row that counts: the decoded form first, the raw one
    only for a partner allowed it."""
    for row in sorted(rows, key=lambda r: candidates.get(r.token_hash, True)):
        if candidates.get(row.token_hash) and not row.allow_raw_token:
            continue
        return row
    return None


class SqliteReader:
    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        uri = "file:" + urllib.parse.quote(os.path.abspath(self.path)) + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=0, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA query_only=ON")
        # Pages read through a mapping, not a read() each: a point read then
        # costs no system call, however large the database.
        conn.execute("PRAGMA mmap_size=268435456")
        return conn

    async def token_and_object(self, module: str, oid_key: str, hashes: tuple[str, str]) -> list[TokenRow] | None:
        try:
            if self._conn is None:
                self._conn = self._connect()
            # fetchall: the statement is finished, so no read transaction stays
            # open and the next read sees every commit since.
            rows = self._conn.execute(SQLITE_SQL, (module, oid_key, *hashes)).fetchall()
        except sqlite3.Error:
            self._drop()
            return None  # busy, or not yet migrated: the ordinary path answers
        return [TokenRow(r[0], r[1], r[2], r[3], r[4], bool(r[5]), r[6], r[7], r[8]) for r in rows]

    async def close(self) -> None:
        self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class PgReader:
    def __init__(self, dsn: str, max_size: int = 8) -> None:
        self.dsn = dsn
        self.max_size = max_size
        self._pool = None
        self._opening: asyncio.Future | None = None  # one pool, however many requests come first
        self._closed = False

    async def token_and_object(self, module: str, oid_key: str, hashes: tuple[str, str]) -> list[TokenRow] | None:
        import asyncpg

        if self._closed:
            return None
        try:
            if self._pool is None:
                await self._open()
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(PG_SQL, module, oid_key, *hashes)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return None  # the ordinary path answers, or says what is wrong
        return [TokenRow(*r) for r in rows]

    async def _open(self) -> None:
        import asyncpg

        if self._opening is None:
            # reset: nothing to undo after one read outside a transaction, so
            # no reset query (a round trip) each time a connection goes back.
            self._opening = asyncio.ensure_future(asyncpg.create_pool(
                self.dsn, min_size=1, max_size=self.max_size, reset=_nothing_to_reset))
        try:
            pool = await asyncio.shield(self._opening)
        except asyncio.CancelledError:
            raise  # this request went away; the pool still opens for the others
        except BaseException:
            self._opening = None  # the next request tries again
            raise
        if self._closed:
            await pool.close()
            raise OSError("closed")
        self._pool = pool

    async def close(self) -> None:
        self._closed = True
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                # close() waits for every connection to come back; a stop must not hang on one.
                await asyncio.wait_for(pool.close(), 5.0)
            except (asyncio.TimeoutError, OSError):
                pool.terminate()


async def _nothing_to_reset(_conn: object) -> None:
    return None


def reader_for(url: URL) -> SqliteReader | PgReader | None:
    """The fast reader of an engine's database; None where there is none
    (an in-memory SQLite database is private to the engine's connection)."""
    if url.get_backend_name() == "sqlite":
        return SqliteReader(url.database) if url.database and url.database != ":memory:" else None
    if url.get_backend_name() == "postgresql":
        dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return PgReader(dsn)
    return None
