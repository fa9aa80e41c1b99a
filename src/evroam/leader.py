"""Leader election among the processes that share one database.

Scheduled pulls, sync-lag alerts and call-log pruning must run on exactly
one process at a time, or partners are pulled N times and every alert is
raised N times; delivery runs on every process (the outbox hands each row
to one of them). Every process that runs workers (`evroam worker`, and
`evroam serve` unless run_workers = false) takes part.

PostgreSQL: the leader holds a session-level advisory lock on a connection
of its own. Every RETRY_S the leader checks on that connection that it
still holds the lock, and a standby tries to take it.

- The leader dies (even SIGKILL): its socket closes, PostgreSQL ends the
  session and frees the lock at once, and a standby takes over within
  RETRY_S.
- The leader's host or network dies: PostgreSQL sees it through the TCP
  keepalives set on the lock's connection (about 11 s) and frees the lock.
- The leader loses its connection: a session the server ends (a killed
  backend, a restart) is seen as its socket closes, and the leader stops
  its duties at once; a connection that goes silent fails the next check
  within RETRY_S + CHECK_TIMEOUT_S (5 s), sooner than PostgreSQL hands the
  lock to another (the keepalives above). Then it stands by again.

SQLite: one process per database is the model (SQLite has one writer), so
that process is simply the leader.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from evroam.background import Background

log = structlog.get_logger(__name__)

RETRY_S = 2.0
CHECK_TIMEOUT_S = 3.0
# The two-int advisory key space ("evr\0", 1), apart from the single-bigint
# keys of the per-pull locks (sync/scheduler.py). Advisory locks are per
# database, so nodes on other databases of the same server never compete.
_KEY = (0x65767200, 1)
_TRY = sa.text(f"SELECT pg_try_advisory_lock({_KEY[0]}, {_KEY[1]})")
# Asked of pg_locks rather than trusting a live connection: behind a
# transaction-pooling proxy the session (and its lock) may not be ours.
_HELD = sa.text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()"
    f" AND classid = {_KEY[0]} AND objid = {_KEY[1]} AND objsubid = 2"
)
# PostgreSQL drops a vanished leader's session after idle + interval × count
# (5 + 2 × 3 = 11 s), later than that leader stops its duties (5 s).
_KEEPALIVES = {"tcp_keepalives_idle": "5", "tcp_keepalives_interval": "2", "tcp_keepalives_count": "3"}


class Leadership:
    """Runs `lead` when this process becomes the leader and `follow` when it
    stops being it (lost lock, lost connection, or stop())."""

    def __init__(self, engine: AsyncEngine, lead: Callable[[], Awaitable[None]],
                 follow: Callable[[], Awaitable[None]], *, retry_s: float = RETRY_S,
                 check_timeout_s: float = CHECK_TIMEOUT_S) -> None:
        self.engine = engine
        self._lead = lead
        self._follow = follow
        self.retry_s = retry_s
        self.check_timeout_s = check_timeout_s
        self.identity = f"{socket.gethostname()}:{os.getpid()}"
        self.is_leader = False
        self.elections = 0  # how often this process became leader
        self._lost = asyncio.Event()  # the lock's connection closed under us
        self._lock_engine: AsyncEngine | None = None
        self._conn: AsyncConnection | None = None
        self._standby_logged = False
        self._loop = Background("leader-election")

    def start(self) -> None:
        self._loop.start(self._run)

    async def stop(self) -> None:
        await self._loop.stop()
        if self.is_leader:
            await self._step_down("stopping")
        await self._close()  # ends the session, which frees the lock for a standby at once
        if self._lock_engine is not None:
            await self._lock_engine.dispose()
            self._lock_engine = None

    async def _run(self) -> None:
        if self.engine.dialect.name != "postgresql":
            await self._elect()
            return
        while True:
            try:
                if self.is_leader:
                    if not await self._holds():
                        await self._step_down("lost the leader lock's connection")
                        await self._close()
                elif await self._acquire():
                    await self._elect()
            except Exception:  # the election must outlive any one bad round
                log.exception("leader.election_failed", holder=self.identity)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._lost.wait(), self.retry_s)

    async def _elect(self) -> None:
        self.is_leader = True
        self.elections += 1
        self._standby_logged = False
        log.info("leader.elected", holder=self.identity, pid=os.getpid())
        await self._lead()

    async def _step_down(self, reason: str) -> None:
        self.is_leader = False
        # A clean stop hands over as planned; only a lost lock is worth a warning.
        report = log.info if reason == "stopping" else log.warning
        report("leader.stepped_down", holder=self.identity, pid=os.getpid(), reason=reason)
        await self._follow()

    async def _ask(self, statement: sa.TextClause) -> object:
        assert self._conn is not None
        value = (await asyncio.wait_for(self._conn.execute(statement), self.check_timeout_s)).scalar()
        # Never left idle in a transaction (idle_in_transaction_session_timeout
        # would end the session and with it the lock).
        await asyncio.wait_for(self._conn.commit(), self.check_timeout_s)
        return value

    async def _holds(self) -> bool:
        try:
            return bool(await self._ask(_HELD))
        except Exception as exc:
            log.warning("leader.check_failed", holder=self.identity, error=f"{type(exc).__name__}: {exc}")
            return False

    async def _acquire(self) -> bool:
        try:
            if self._conn is None:
                await self._connect()
            got = bool(await self._ask(_TRY))
        except Exception as exc:
            log.warning("leader.lock_unavailable", holder=self.identity, error=f"{type(exc).__name__}: {exc}")
            await self._close()
            return False
        if not got and not self._standby_logged:
            self._standby_logged = True
            log.info("leader.standby", holder=self.identity, pid=os.getpid())
        return got

    async def _connect(self) -> None:
        self._conn = await asyncio.wait_for(self._engine_for_lock().connect(), self.check_timeout_s)
        self._lost.clear()
        # A session ended by the server (pg_terminate_backend, a restart) is
        # noticed as the socket closes, not at the next check: the lock is
        # already free for a standby, so the duties must stop now.
        driver = (await self._conn.get_raw_connection()).driver_connection
        if hasattr(driver, "add_termination_listener"):
            driver.add_termination_listener(lambda _conn: self._lost.set())

    def _engine_for_lock(self) -> AsyncEngine:
        # A connection of its own, outside the pool: closing it must really
        # end the session (and free the lock).
        if self._lock_engine is None:
            settings = {"application_name": f"evroam leader {self.identity}"[:63], **_KEEPALIVES}
            self._lock_engine = create_async_engine(self.engine.url, poolclass=NullPool,
                                                    connect_args={"server_settings": settings})
        return self._lock_engine

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            await conn.invalidate()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(conn.close(), self.check_timeout_s)
