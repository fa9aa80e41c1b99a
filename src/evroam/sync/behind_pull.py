"""Pulling through a Hub (docs/hub/behind-pull.md): the objects of every
party behind it, kept apart per owner.

- A scheduled pull is one GET All (TO = the Hub), as transport_and_format's
  "Message Routing" has a party read every other party's list. Its
  date_from is the oldest watermark of the owners it concerns, so an owner
  that was left out of an earlier pull (skipped, or not yet known) loses
  nothing; each owner's watermark moves only when it was pulled.
- A full pull marks stale, per owner, what that owner no longer sends. An
  owner we hold objects of that sent none is asked alone (TO = that party)
  before anything of it is marked: the Hub leaves a failing party out of a
  GET All, and its absence must not read as "it has nothing".
- An owner the Hub reports OFFLINE, SUSPENDED or PLANNED is skipped: nothing
  of it is stored, marked or moved. When it is CONNECTED again it is pulled
  alone (`owner=`; the scheduler, at `owner_pull_due_at`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from evroam.client.ocpi import OcpiClient, PartnerError
from evroam.hooks import Hooks
from evroam.module import Module
from evroam.ocpi.headers import Routing
from evroam.ocpi.types import ci_key, utcnow
from evroam.ocpi.versions import InterfaceRole
from evroam.store.parties import Party
from evroam.store.tables import objects as objects_table
from evroam.sync.pull import (
    CONNECTED, PARTNER, BehindLookup, Owner, PullResult, Read, failed, first_params, mark_missing, owner_text,
    record, sends, succeeded, watermark,
)


def our_side(module: Module, ours: Sequence[Any]) -> Owner | None:
    """The first of our roles that receives the module: the FROM of our GET."""
    for r in ours:
        if module.interfaces.get(r.role) == InterfaceRole.RECEIVER:
            return ci_key(r.country_code), ci_key(r.party_id)
    return None


async def held_owners(conn: AsyncConnection, module: str, party_id: int) -> set[Owner]:
    """The owners of the objects we hold from this partner."""
    rows = await conn.execute(sa.select(objects_table.c.cc_key, objects_table.c.pid_key).distinct().where(
        objects_table.c.module == module, objects_table.c.owner_id == party_id))
    return {(r.cc_key, r.pid_key) for r in rows}


async def pull_through(engine: AsyncEngine, client: OcpiClient, party: Party, module: Module, url: str,
                       result: PullResult, *, hub: Owner, full: bool, hooks: Hooks | None, ours: Sequence[Any],
                       behind: BehindLookup | None, owner: Owner | None) -> PullResult:
    frm = our_side(module, ours)
    if frm is None:
        result.error = f"none of our roles receives {module.id}"
        return result
    async with engine.connect() as conn:
        reported = {(ci_key(p.country_code), ci_key(p.party_id)): p
                    for p in (await behind(conn, party.id) if behind is not None else ())}
    blocked = {o for o, p in reported.items() if p.status != CONNECTED}
    ctx = _Through(engine, client, party, module, url, result, frm, hooks, blocked)
    if owner is not None:
        return await ctx.one(owner, full)
    known = {o for o, p in reported.items() if sends(module, p.role)}
    return await ctx.all(hub, full, known)


class _Through:
    def __init__(self, engine: AsyncEngine, client: OcpiClient, party: Party, module: Module, url: str,
                 result: PullResult, frm: Owner, hooks: Hooks | None, blocked: set[Owner]) -> None:
        self.engine, self.client, self.party, self.module, self.url = engine, client, party, module, url
        self.result, self.frm, self.hooks, self.blocked = result, frm, hooks, blocked

    def _read(self, to: Owner, accept: Callable[[Owner], bool]) -> Read:
        return Read(self.engine, self.client, self.party, self.module, self.hooks, self.result, accept,
                    routing=Routing(*self.frm, *to))

    async def all(self, hub: Owner, full: bool, known: set[Owner]) -> PullResult:
        """One GET All with TO = the Hub."""
        module_id, result = self.module.id, self.result
        started = utcnow()
        async with self.engine.connect() as conn:
            held = await held_owners(conn, module_id, self.party.id)
            concerned = (held | known) - self.blocked
            since = None if full else await self._since(conn, concerned)
        read = self._read(hub, lambda o: o not in self.blocked)
        try:
            await read.run(self.url, first_params(self.module, since))
        except PartnerError as exc:
            return await failed(self.engine, self.party, module_id, result, started, exc.message,
                                [PARTNER, *concerned])
        result.skipped = sorted(owner_text(o) for o in read.skipped | (self.blocked & (held | known)))
        pulled = concerned | set(read.seen)
        if full:
            for o, pks in read.seen.items():
                result.marked_stale += await mark_missing(self.engine, module_id, self.party.id, o, pks)
            for o in sorted(held - set(read.seen) - self.blocked):
                alone = await _Through(self.engine, self.client, self.party, self.module, self.url,
                                       PullResult(module_id, True), self.frm, self.hooks, self.blocked).one(o, True)
                result.marked_stale += alone.marked_stale
                pulled.discard(o)  # its own pull recorded its state
        for o in pulled:
            await record(self.engine, self.party.id, module_id, [o], last_success_start=started,
                         last_attempt_at=started, last_error=None, objects_seen=len(read.seen.get(o, ())))
        return await succeeded(self.engine, self.party, module_id, result, started)

    async def _since(self, conn: AsyncConnection, concerned: set[Owner]):
        """The oldest watermark among the owners concerned; None when one has
        none yet (new, or skipped until now): its whole list is still to read."""
        if not concerned:
            return await watermark(conn, self.party.id, self.module.id, PARTNER)
        marks = [await watermark(conn, self.party.id, self.module.id, o) for o in concerned]
        return None if any(m is None for m in marks) else min(m for m in marks if m is not None)

    async def one(self, owner: Owner, full: bool) -> PullResult:
        """One owner's objects alone: TO = that party, through the Hub."""
        module_id, result = self.module.id, self.result
        result.owner = owner_text(owner)
        if owner in self.blocked:
            result.skipped = [owner_text(owner)]
            return result
        started = utcnow()
        async with self.engine.connect() as conn:
            since = None if full else await watermark(conn, self.party.id, module_id, owner)
        read = self._read(owner, lambda o: o == owner)
        try:
            await read.run(self.url, first_params(self.module, since))
        except PartnerError as exc:
            return await failed(self.engine, self.party, module_id, result, started, exc.message, [owner])
        result.foreign = read.refused
        if full:
            result.marked_stale = await mark_missing(self.engine, module_id, self.party.id, owner,
                                                     read.seen.get(owner, set()))
        return await succeeded(self.engine, self.party, module_id, result, started, [owner])
