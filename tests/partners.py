"""Helpers for the partner life-cycle and leader-election tests: roles, an
object to push, and what each side holds."""

from __future__ import annotations

import sqlalchemy as sa

from evroam.node import Node
from evroam.ocpi.tariffs import Tariff
from evroam.store import parties as repo
from evroam.store.parties import Party
from evroam.store.tables import objects, outbox, party_tokens, sync_state

CPO = [("CPO", "NL", "CPO")]
EMSP = [("EMSP", "DE", "EMS")]


def tariff(tid: str, price: float = 0.25, updated: str = "2026-01-01T00:00:00Z") -> Tariff:
    return Tariff.from_wire({
        "country_code": "NL", "party_id": "CPO", "id": tid, "currency": "EUR",
        "elements": [{"price_components": [{"type": "ENERGY", "price": price, "step_size": 1}]}],
        "last_updated": updated,
    })


async def parties_of(node: Node) -> list[Party]:
    async with node.engine.connect() as conn:
        return await repo.list_all(conn)


async def party_named(node: Node, name: str) -> Party | None:
    async with node.engine.connect() as conn:
        return await repo.by_name(conn, name)


async def outbox_rows(node: Node, party_id: int | None = None) -> list[tuple[str, int]]:
    """(status, party_id) of every outbox row, or of one partner's."""
    stmt = sa.select(outbox.c.status, outbox.c.party_id).order_by(outbox.c.id)
    if party_id is not None:
        stmt = stmt.where(outbox.c.party_id == party_id)
    async with node.engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(stmt)).all()]


async def received_ids(node: Node, module: str, owner: Party) -> list[str]:
    """Ids of the objects of `module` that `owner` sent to `node`."""
    stmt = (sa.select(objects.c.oid_key).where(objects.c.module == module, objects.c.owner_id == owner.id)
            .order_by(objects.c.oid_key))
    async with node.engine.connect() as conn:
        return list((await conn.execute(stmt)).scalars())


async def sync_modules(node: Node, party_id: int) -> list[str]:
    stmt = sa.select(sync_state.c.module).where(sync_state.c.party_id == party_id).order_by(sync_state.c.module)
    async with node.engine.connect() as conn:
        return list((await conn.execute(stmt)).scalars())


async def token_kinds(node: Node) -> list[tuple[int, str]]:
    """(party_id, kind) of every token `node` issued."""
    stmt = sa.select(party_tokens.c.party_id, party_tokens.c.kind).order_by(party_tokens.c.party_id)
    async with node.engine.connect() as conn:
        return [tuple(r) for r in (await conn.execute(stmt)).all()]
