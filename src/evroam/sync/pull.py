"""Pulling a partner's Sender interfaces: full and delta sync.

One page is validated and stored at a time, so a pull never holds the whole
set in memory. A delta sync asks for date_from = the start of the last
successful sync, which heals anything a missed push left behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
import structlog
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from evroam.client.ocpi import OcpiClient, Paging, PartnerError
from evroam.ocpi.base import error_text
from evroam.module import REGISTRY, Module
from evroam.ocpi.types import ci_key, format_datetime, utcnow
from evroam.hooks import Hooks, received
from evroam.store import objects
from evroam.store.parties import Party
from evroam.store.tables import sync_state
from evroam.sync.publish import object_key, ref_key

log = structlog.get_logger(__name__)



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


async def last_success(engine: AsyncEngine, party_id: int, module: str) -> datetime | None:
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(sync_state.c.last_success_start).where(
            sync_state.c.party_id == party_id, sync_state.c.module == module))).first()
    return row[0] if row else None


async def _record(engine: AsyncEngine, party_id: int, module: str, **values: object) -> None:
    # One atomic upsert: two pulls of one module can end together (the
    # scheduler's and an operator's `sync pull`), and an UPDATE-then-INSERT
    # would let both insert.
    async with engine.begin() as conn:
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        await conn.execute(insert(sync_state).values(party_id=party_id, module=module, **values)
                           .on_conflict_do_update(index_elements=[sync_state.c.party_id, sync_state.c.module],
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


async def pull(engine: AsyncEngine, client: OcpiClient, party: Party, module_id: str, *, full: bool = False,
               hooks: Hooks | None = None) -> PullResult:
    module = REGISTRY.objects()[module_id]
    result = PullResult(module_id, full)
    url = party.endpoint_url(module_id, "SENDER")
    if url is None or not party.token_out:
        result.error = f"{party.name} has no {module_id} sender endpoint"
        return result
    started = utcnow()
    since = None if full else await last_success(engine, party.id, module_id)
    params: dict[str, str] = {}
    if since is not None:
        params["date_from"] = format_datetime(since)
    else:
        params.update(module.pull_params)  # what a Sender requires of a first pull (Sessions: date_from)
    owners = {(ci_key(r["country_code"]), ci_key(r["party_id"])) for r in party.roles or ()}
    seen: set[int] = set()
    paging = Paging()
    try:
        async for page in client.paginate(url, party.token_out, params=params or None, paging=paging,
                                          party_id=party.id, partner=party.name, raw_token=party.allow_raw_token):
            rows = {}
            for i, raw in enumerate(page):
                try:
                    obj = module.model.from_wire(raw)
                except ValidationError as exc:
                    result.invalid.append(f"#{result.stored + i}: {error_text(exc)[:300]}")
                    continue
                # Each object's owner is its own cc/pid; others are not ours to keep (A7.7).
                if (ci_key(obj.country_code), ci_key(obj.party_id)) not in owners:
                    result.foreign += 1
                    continue
                key = object_key(module, obj, party.id)
                # A page repeating an object (its total shifted under us) keeps the last copy.
                rows[(key.cc, key.pid, key.oid, key.type)] = (key, obj.to_json_bytes().decode(), obj.last_updated,
                                                              ref_key(module, obj), obj)
            unique = {ident: row[:4] for ident, row in rows.items()}
            async with engine.begin() as conn:
                # A version pushed to us after this page was read is newer: kept.
                stored = await objects.upsert_many(conn, list(unique.values()), keep_newer=True)
                if module.judge is not None:
                    await _judge_new(conn, module, party.id, unique, stored)
            seen.update(u.pk for u in stored)
            result.stored += len(rows)
            result.kept_newer += sum(1 for u in stored if not u.written)
            if hooks is not None:
                for row, u in zip(rows.values(), stored, strict=True):
                    if u.written:
                        await hooks.fire(received(module_id), row[4], party)
    except PartnerError as exc:
        result.error = exc.message
        result.paging = paging.fallback
        await _record(engine, party.id, module_id, last_attempt_at=started, last_error=exc.message)
        log.warning("pull.failed", party=party.name, module=module_id, error=exc.message)
        return result
    result.paging = paging.fallback
    if full:
        # All pages together are the new truth: what is missing is no longer valid.
        async with engine.begin() as conn:
            missing = await objects.all_pks(conn, module_id, party.id) - seen
            result.marked_stale = await objects.mark_stale(conn, missing)
    if result.invalid:
        log.warning("pull.invalid_objects", party=party.name, module=module_id, count=len(result.invalid),
                    first=result.invalid[0])
    await _record(engine, party.id, module_id, last_success_start=started, last_attempt_at=started,
                  last_error=None, objects_seen=result.stored)
    return result
