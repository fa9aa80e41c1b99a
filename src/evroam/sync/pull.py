"""Pulling a partner's Sender interfaces: full and delta sync.

One page is validated and stored at a time, so a pull never holds the whole
set in memory. A delta sync asks for date_from = the start of the last
successful sync, which heals anything a missed push left behind.

A partner that is a Hub (a HUB role in its credentials) is pulled through:
a GET All (transport_and_format, "GET All via Hubs": TO = the Hub) merges
the lists of every party behind it, each object under its owner's
country_code/party_id. The pull state is then kept per owner as well
(docs/hub/behind-pull.md): each owner's watermark, stale marking within one
owner only, and the owners the Hub reports OFFLINE, SUSPENDED or PLANNED
skipped. One owner's objects alone come with TO = that party (`owner=`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
import structlog
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from evroam.client.ocpi import OcpiClient, Paging, PartnerError
from evroam.ocpi.base import error_text
from evroam.ocpi.common import Role
from evroam.ocpi.headers import Routing
from evroam.ocpi.versions import InterfaceRole
from evroam.module import REGISTRY, Module
from evroam.ocpi.types import ci_key, format_datetime, utcnow
from evroam.hooks import Hooks, received
from evroam.store import objects
from evroam.store.db import is_transient
from evroam.store.parties import Party
from evroam.store.tables import objects as objects_table
from evroam.store.tables import sync_state
from evroam.sync.publish import object_key, ref_key

log = structlog.get_logger(__name__)

PAGE_ATTEMPTS = 5  # a page written again after a deadlock (PostgreSQL picks one victim)

Owner = tuple[str, str]  # a party behind a Hub: (country_code, party_id), upper case
PARTNER: Owner = ("", "")  # the sync_state row of the partner itself
CONNECTED = "CONNECTED"


class PartyBehind(Protocol):
    """What a Hub reported of one party behind it (modules/hubclientinfo/behind.py)."""

    country_code: str
    party_id: str
    role: str
    status: str


# (conn, the Hub's registration id) -> every party it reported; wired in by the node,
# as the generic layers never name a module.
BehindLookup = Callable[[AsyncConnection, int], Awaitable[Sequence[PartyBehind]]]


@dataclass(slots=True)
class PullResult:
    module: str
    full: bool
    stored: int = 0
    # Objects we already held in a newer version (pushed after the page was read).
    kept_newer: int = 0
    invalid: list[str] = field(default_factory=list)
    foreign: int = 0
    marked_stale: int = 0
    error: str | None = None
    # Set when the partner's Link could not be followed and we paged with
    # offset/limit instead: the pull is complete all the same, but says how.
    paging: str | None = None
    # Through a Hub: the owners whose objects were skipped (not CONNECTED), as "CC/PID".
    skipped: list[str] = field(default_factory=list)
    owner: str | None = None  # "CC/PID" when one owner was pulled (TO = that party)


def hub_key(party: Party) -> Owner | None:
    """The partner's HUB role, when it is a Hub."""
    for r in party.roles or ():
        if r.get("role") == Role.HUB.value:
            return ci_key(r["country_code"]), ci_key(r["party_id"])
    return None


def owner_text(owner: Owner) -> str:
    return f"{owner[0]}/{owner[1]}"


async def last_success(engine: AsyncEngine, party_id: int, module: str, owner: Owner = PARTNER) -> datetime | None:
    async with engine.connect() as conn:
        return await watermark(conn, party_id, module, owner)


async def watermark(conn: AsyncConnection, party_id: int, module: str, owner: Owner) -> datetime | None:
    return (await conn.execute(sa.select(sync_state.c.last_success_start).where(
        *_state_key(party_id, module, owner)))).scalar()


def _state_key(party_id: int, module: str, owner: Owner) -> list[sa.ColumnElement[bool]]:
    return [sync_state.c.party_id == party_id, sync_state.c.module == module,
            sync_state.c.owner_cc == owner[0], sync_state.c.owner_pid == owner[1]]


async def record(engine: AsyncEngine, party_id: int, module: str, owners: Iterable[Owner] = (PARTNER,),
                 **values: object) -> None:
    # One atomic upsert per row: two pulls of one module can end together (the
    # scheduler's and an operator's `sync pull`), and an UPDATE-then-INSERT
    # would let both insert.
    async with engine.begin() as conn:
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        for cc, pid in owners:
            await conn.execute(insert(sync_state).values(party_id=party_id, module=module, owner_cc=cc,
                                                         owner_pid=pid, **values)
                               .on_conflict_do_update(index_elements=[sync_state.c.party_id, sync_state.c.module,
                                                                      sync_state.c.owner_cc, sync_state.c.owner_pid],
                                                      set_=values))


async def _judge_new(conn, module: Module, owner_id: int, unique: dict,
                     stored: list[objects.Upserted]) -> None:
    """A pulled object is received like a pushed one: judged once, when it
    first arrives (CDRs: re-priced, kept ACCEPTED or DISPUTED with the reason)."""
    assert module.judge is not None and module.model is not None
    for (_, data, _, _), (pk, created, _) in zip(unique.values(), stored, strict=True):
        if created:
            status, note = await module.judge(conn, owner_id, module.model.from_wire(data))
            await objects.set_status(conn, pk, status, note)


@dataclass(slots=True)
class Read:
    """One paginated GET of a Sender list: what it asks, and which owners it keeps."""

    engine: AsyncEngine
    client: OcpiClient
    party: Party
    module: Module
    hooks: Hooks | None
    result: PullResult
    accept: Callable[[Owner], bool]
    routing: Routing | None = None
    skipped: set[Owner] = field(default_factory=set)
    refused: int = 0  # objects of owners not accepted
    seen: dict[Owner, set[int]] = field(default_factory=dict)  # pks stored per owner

    async def run(self, url: str, params: dict[str, str]) -> None:
        """Raises PartnerError; what was stored until then stays."""
        paging = Paging()
        extra: dict[str, Any] = {"routing": self.routing} if self.routing is not None else {}
        try:
            async for page in self.client.paginate(url, self.party.token_out, params=params or None, paging=paging,
                                                   party_id=self.party.id, partner=self.party.name,
                                                   raw_token=self.party.allow_raw_token, **extra):
                await self._page(page)
        finally:
            self.result.paging = paging.fallback

    async def _page(self, page: list[Any]) -> None:
        module, party, result = self.module, self.party, self.result
        rows = {}
        for i, raw in enumerate(page):
            try:
                obj = module.model.from_wire(raw)
            except ValidationError as exc:
                result.invalid.append(f"#{result.stored + i}: {error_text(exc)[:300]}")
                continue
            owner = (ci_key(obj.country_code), ci_key(obj.party_id))
            if not self.accept(owner):
                self.skipped.add(owner)
                self.refused += 1
                continue
            key = object_key(module, obj, party.id)
            # A page repeating an object (its total shifted under us) keeps the last copy.
            rows[(key.cc, key.pid, key.oid, key.type)] = (key, obj.to_json_bytes().decode(), obj.last_updated,
                                                          ref_key(module, obj), obj)
        unique = {ident: row[:4] for ident, row in rows.items()}
        for attempt in range(PAGE_ATTEMPTS):
            try:
                async with self.engine.begin() as conn:
                    # A version pushed to us after this page was read is newer: kept.
                    stored = await objects.upsert_many(conn, list(unique.values()), keep_newer=True)
                    if module.judge is not None:
                        await _judge_new(conn, module, party.id, unique, stored)
                break
            except DBAPIError as exc:
                # Concurrent pulls and pushes of the same new objects can
                # deadlock on PostgreSQL; the victim's page is written again.
                if not is_transient(exc) or attempt == PAGE_ATTEMPTS - 1:
                    raise
                log.info("pull.page_retried", module=module.id, partner=party.name, error=type(exc.orig).__name__)
        for ident, u in zip(unique, stored, strict=True):
            self.seen.setdefault(ident[:2], set()).add(u.pk)
        result.stored += len(rows)
        result.kept_newer += sum(1 for u in stored if not u.written)
        if self.hooks is not None:
            for row, u in zip(rows.values(), stored, strict=True):
                if u.written:
                    await self.hooks.fire(received(module.id), row[4], party)


async def mark_missing(engine: AsyncEngine, module: str, party_id: int, owner: Owner | None,
                        seen: set[int]) -> int:
    """A full pull's pages together are the new truth (of one owner, when given)."""
    # Only what is not stale yet, so `marked_stale` counts what this pull found gone.
    stmt = sa.select(objects_table.c.id).where(objects_table.c.module == module, objects_table.c.owner_id == party_id,
                                               objects_table.c.stale.is_(False))
    if owner is not None:
        stmt = stmt.where(objects_table.c.cc_key == owner[0], objects_table.c.pid_key == owner[1])
    async with engine.begin() as conn:
        missing = set((await conn.execute(stmt)).scalars()) - seen
        return await objects.mark_stale(conn, missing)


def first_params(module: Module, since: datetime | None) -> dict[str, str]:
    if since is not None:
        return {"date_from": format_datetime(since)}
    return dict(module.pull_params)  # what a Sender requires of a first pull (Sessions: date_from)


async def pull(engine: AsyncEngine, client: OcpiClient, party: Party, module_id: str, *, full: bool = False,
               hooks: Hooks | None = None, ours: Sequence[Any] = (),
               behind: BehindLookup | None = None, owner: Owner | None = None) -> PullResult:
    """Pull one module from a partner. Through a Hub, `ours` (our roles,
    config.RoleConfig) gives the request's FROM and `behind` the parties the
    Hub reported; `owner` pulls one of them alone."""
    module = REGISTRY.objects()[module_id]
    result = PullResult(module_id, full)
    url = party.endpoint_url(module_id, "SENDER")
    if url is None or not party.token_out:
        result.error = f"{party.name} has no {module_id} sender endpoint"
        return result
    hub = hub_key(party) if module.routed else None
    if hub is not None:
        from evroam.sync.behind_pull import pull_through  # it builds on this module's pieces

        return await pull_through(engine, client, party, module, url, result, hub=hub, full=full, hooks=hooks,
                                  ours=ours, behind=behind, owner=owner)
    started = utcnow()
    since = None if full else await last_success(engine, party.id, module_id)
    if module.owner_rules.describes_others:
        accept: Callable[[Owner], bool] = lambda _o: True  # noqa: E731  (HubClientInfo: the parties it describes)
    else:
        # Each object's owner is its own cc/pid; others are not ours to keep (A7.7).
        owners = {(ci_key(r["country_code"]), ci_key(r["party_id"])) for r in party.roles or ()}
        accept = owners.__contains__
    read = Read(engine, client, party, module, hooks, result, accept)
    try:
        await read.run(url, first_params(module, since))
    except PartnerError as exc:
        return await failed(engine, party, module_id, result, started, exc.message)
    result.foreign = read.refused
    if full:
        result.marked_stale = await mark_missing(engine, module_id, party.id, None,
                                                  set().union(*read.seen.values()))
    return await succeeded(engine, party, module_id, result, started)


async def failed(engine: AsyncEngine, party: Party, module_id: str, result: PullResult, started: datetime,
                 message: str, owners: Iterable[Owner] = (PARTNER,)) -> PullResult:
    result.error = message
    await record(engine, party.id, module_id, owners, last_attempt_at=started, last_error=message)
    log.warning("pull.failed", party=party.name, module=module_id, owner=result.owner, error=message)
    return result


async def succeeded(engine: AsyncEngine, party: Party, module_id: str, result: PullResult, started: datetime,
                    owners: Iterable[Owner] = (PARTNER,)) -> PullResult:
    if result.invalid:
        log.warning("pull.invalid_objects", party=party.name, module=module_id, count=len(result.invalid),
                    first=result.invalid[0])
    await record(engine, party.id, module_id, owners, last_success_start=started, last_attempt_at=started,
                 last_error=None, objects_seen=result.stored)
    return result


def sends(module: Module, role: str) -> bool:
    """Whether a party of `role` implements the module's Sender interface."""
    try:
        return module.interfaces.get(Role(role)) == InterfaceRole.SENDER
    except ValueError:
        return False
