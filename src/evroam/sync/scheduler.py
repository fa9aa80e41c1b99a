"""Scheduled pulls: per partner and module we receive from it, a delta pull
every `pull_interval_s` (±10 % jitter, so many partners do not fire at once)
and a full pull every `full_pull_interval_s`.

Pushes can be missed (a partner's outage, a dropped request); the delta pull
heals that, and the full pull also marks what the partner no longer has as
stale. A partner seen for the first time gets a full pull after
`pull_initial_delay_s` (the initial sync after registration).

A partner that is a Hub is pulled through it (sync/behind_pull.py). A party
behind it that the Hub reports CONNECTED again gets a full pull of its own
objects `hub_reconnect_pull_s` later (`owner_pull_due`: a row in
sync_state, so whichever process heard the news, the leader pulls).

The scheduler runs only on the elected leader among the processes sharing
the database (evroam/leader.py). A pull still takes an advisory lock, and a
delta pull another process made recently is skipped, because an operator's
`evroam sync pull` may run beside it, and a new leader may overlap the old
one's last pull.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from evroam.background import every
from evroam.client.ocpi import OcpiClient
from evroam.config import NodeConfig
from evroam.ocpi.common import Role
from evroam.module import REGISTRY
from evroam.ocpi.types import utcnow
from evroam.ocpi.versions import InterfaceRole
from evroam.hooks import Hooks
from evroam.store import parties as party_repo
from evroam.store.parties import Party
from evroam.store.tables import sync_state
from evroam.sync.pull import PARTNER, BehindLookup, Owner, PullResult, pull, record

log = structlog.get_logger(__name__)

JITTER = 0.10
RETRY_S = 900.0  # a failed pull is retried sooner than the next regular one
_LOCK_BASE = 0x6576_7200_0000_0000  # "evr": keeps our advisory locks apart from anyone else's


def jittered(seconds: float) -> float:
    return seconds * random.uniform(1 - JITTER, 1 + JITTER)


def receiving_modules(roles: Iterable[Role]) -> list[str]:
    """Object modules where one of our roles implements the Receiver interface."""
    wanted = {m for r in roles for m, iface in REGISTRY.interfaces_of(r).items() if iface == InterfaceRole.RECEIVER}
    return [m for m in REGISTRY.objects() if m in wanted]


def pull_modules(party: Party, roles: Iterable[Role]) -> list[str]:
    """The modules we pull from this partner: it sends them, we receive them."""
    if party.status != party_repo.REGISTERED or not party.token_out:
        return []
    return [m for m in receiving_modules(roles) if party.endpoint_url(m, "SENDER")]


@dataclass(slots=True)
class _Due:
    delta: datetime
    full: datetime


class PullScheduler:
    def __init__(self, engine: AsyncEngine, client: OcpiClient, config: NodeConfig, hooks: Hooks | None = None,
                 *, concurrency: int = 4, behind: BehindLookup | None = None) -> None:
        self.engine = engine
        self.behind = behind
        self.client = client
        self.config = config
        self.hooks = hooks
        self.roles = [r.role for r in config.roles]
        self.concurrency = concurrency
        self._due: dict[tuple[int, str], _Due] = {}
        self._running: dict[tuple[int, str] | tuple[int, str, Owner], asyncio.Task[None]] = {}
        self._sem = asyncio.Semaphore(concurrency)
        self._task: asyncio.Task[None] | None = None
        self.results: list[tuple[str, PullResult]] = []  # the latest few, for tests and status

    @property
    def interval_s(self) -> float:
        return self.config.pull_interval_s

    @property
    def full_interval_s(self) -> float:
        return self.config.full_pull_interval_s

    @property
    def tick_s(self) -> float:
        return max(0.05, min(30.0, self.interval_s / 10, self.full_interval_s / 10,
                             max(self.config.pull_initial_delay_s, 0.5), max(self.config.hub_reconnect_pull_s, 0.5)))

    async def pull_one(self, party: Party, module: str, *, full: bool = False,
                       owner: Owner | None = None) -> PullResult:
        """One pull now, with what a pull through a Hub needs (node.pull, `evroam sync pull`)."""
        return await pull(self.engine, self.client, party, module, full=full, hooks=self.hooks,
                          ours=self.config.roles, behind=self.behind, owner=owner)

    async def _first_sight(self, party: Party, module: str, now: datetime) -> _Due:
        async with self.engine.connect() as conn:
            row = (await conn.execute(sa.select(sync_state.c.last_attempt_at).where(
                sync_state.c.party_id == party.id, sync_state.c.module == module,
                sync_state.c.owner_cc == PARTNER[0], sync_state.c.owner_pid == PARTNER[1]))).first()
        if row is None or row.last_attempt_at is None:
            initial = now + timedelta(seconds=self.config.pull_initial_delay_s)
            return _Due(delta=initial, full=initial)
        delta = max(now, row.last_attempt_at + timedelta(seconds=jittered(self.interval_s)))
        # When the last full pull was is not recorded: place the next one
        # anywhere in the coming period, so restarts do not bunch them up.
        full = now + timedelta(seconds=random.uniform(0, self.full_interval_s))
        return _Due(delta=delta, full=full)

    async def run_once(self) -> list[asyncio.Task[None]]:
        """Start every pull that is due; returns the tasks started."""
        now = utcnow()
        async with self.engine.connect() as conn:
            parties = await party_repo.list_all(conn)
        live: set[tuple[int, str]] = set()
        started = []
        for party in parties:
            for module in pull_modules(party, self.roles):
                key = (party.id, module)
                live.add(key)
                if key not in self._due:
                    self._due[key] = await self._first_sight(party, module, now)
                due = self._due[key]
                if key in self._running or min(due.delta, due.full) > now:
                    continue
                task = asyncio.create_task(self._pull(party, module, full=due.full <= now),
                                           name=f"pull-{party.name}-{module}")
                self._running[key] = task
                task.add_done_callback(lambda _t, k=key: self._running.pop(k, None))
                started.append(task)
        for gone in set(self._due) - live:  # partner left or stopped sending
            del self._due[gone]
        by_id = {p.id: p for p in parties}
        due: dict[tuple[int, str], list[Owner]] = {}
        for party_id, module, owner in await self._owners_due(now):
            if (party_id, module) in live:
                due.setdefault((party_id, module), []).append(owner)
        for (party_id, module), owners in due.items():
            # One task per (partner, module), its owners one after the other: they share its lock.
            key = (party_id, module, ("*", "*"))
            if key in self._running:
                continue
            task = asyncio.create_task(self._pull_owners(by_id[party_id], module, owners),
                                       name=f"pull-{by_id[party_id].name}-{module}-owners")
            self._running[key] = task
            task.add_done_callback(lambda _t, k=key: self._running.pop(k, None))
            started.append(task)
        return started

    async def _pull_owners(self, party: Party, module: str, owners: list[Owner]) -> None:
        for owner in owners:
            await self._pull_owner(party, module, owner)

    async def _owners_due(self, now: datetime) -> list[tuple[int, str, Owner]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.select(sync_state.c.party_id, sync_state.c.module, sync_state.c.owner_cc,
                                                sync_state.c.owner_pid)
                                      .where(sync_state.c.owner_pull_due_at <= now))
        return [(r.party_id, r.module, (r.owner_cc, r.owner_pid)) for r in rows]

    async def _pull_owner(self, party: Party, module: str, owner: Owner) -> None:
        """The full pull of one party behind a Hub that is CONNECTED again."""
        async with self._sem:
            result: PullResult | None = None
            try:
                async with self._exclusive(party.id, module) as mine:
                    if mine:
                        result = await self.pull_one(party, module, full=True, owner=owner)
            except Exception:
                log.exception("sync.pull_crashed", partner=party.name, module=module, owner=owner)
                result = PullResult(module, True, error="crashed")
        if result is None:
            return  # another process holds the lock: the row stays due, for the next round
        self.results = [*self.results[-99:], (party.name, result)]
        log.info("sync.pull", partner=party.name, module=module, full=True, owner=result.owner,
                 stored=result.stored, marked_stale=result.marked_stale, skipped=result.skipped, error=result.error)
        again = utcnow() + timedelta(seconds=jittered(min(self.interval_s, RETRY_S))) if result.error else None
        await record(self.engine, party.id, module, [owner], owner_pull_due_at=again)

    async def _pull(self, party: Party, module: str, *, full: bool) -> None:
        key = (party.id, module)
        async with self._sem:
            result: PullResult | None = None
            try:
                async with self._exclusive(party.id, module) as mine:
                    if not mine:
                        log.info("sync.pull_skipped", partner=party.name, module=module,
                                 reason="another process is pulling")
                    elif not full and await self._pulled_elsewhere(party.id, module):
                        log.info("sync.pull_skipped", partner=party.name, module=module,
                                 reason="pulled recently by another process")
                    else:
                        result = await self.pull_one(party, module, full=full)
            except Exception:
                log.exception("sync.pull_crashed", partner=party.name, module=module, full=full)
                result = PullResult(module, full, error="crashed")
        now = utcnow()
        due = self._due.get(key)
        if due is None:
            return
        failed = result is not None and result.error is not None
        if result is not None:
            self.results = [*self.results[-99:], (party.name, result)]
            log.info("sync.pull", partner=party.name, module=module, full=full, stored=result.stored,
                     invalid=len(result.invalid), marked_stale=result.marked_stale, error=result.error,
                     paging=result.paging)
        delta_s = min(self.interval_s, RETRY_S) if failed else self.interval_s
        due.delta = now + timedelta(seconds=jittered(delta_s))
        if full:
            full_s = min(self.full_interval_s, RETRY_S) if failed else self.full_interval_s
            due.full = now + timedelta(seconds=jittered(full_s))

    async def _pulled_elsewhere(self, party_id: int, module: str) -> bool:
        async with self.engine.connect() as conn:
            last = (await conn.execute(sa.select(sync_state.c.last_success_start).where(
                sync_state.c.party_id == party_id, sync_state.c.module == module,
                sync_state.c.owner_cc == PARTNER[0], sync_state.c.owner_pid == PARTNER[1]))).scalar()
        return last is not None and utcnow() - last < timedelta(seconds=self.interval_s * (1 - JITTER) * 0.9)

    @contextlib.asynccontextmanager
    async def _exclusive(self, party_id: int, module: str):
        """On PostgreSQL, one process at a time pulls a (partner, module);
        SQLite has a single writer process anyway."""
        if self.engine.dialect.name != "postgresql":
            yield True
            return
        key = _LOCK_BASE + party_id * 64 + list(REGISTRY.objects()).index(module)
        async with self.engine.connect() as conn:
            got = (await conn.execute(sa.select(sa.func.pg_try_advisory_lock(key)))).scalar()
            await conn.commit()
            try:
                yield bool(got)
            finally:
                if got:
                    await conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                    await conn.commit()

    async def run(self) -> None:
        await every(self.tick_s, self.run_once, event="sync.scheduler_error")

    def start(self) -> None:
        if self._task is None:
            self._due.clear()
            self._task = asyncio.create_task(self.run(), name="pull-scheduler")

    async def stop(self) -> None:
        tasks = [t for t in (self._task, *self._running.values()) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self._task = None
        self._running.clear()


async def owner_pull_due(engine: AsyncEngine, party: Party, owner: Owner, modules: Iterable[str],
                         at: datetime) -> None:
    """Ask for a full pull of one party's objects behind the Hub `party`, at `at`."""
    for module in modules:
        await record(engine, party.id, module, [owner], owner_pull_due_at=at)
