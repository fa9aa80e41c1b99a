"""Helpers for the tests of a party behind a Hub (docs/hub/behind.md): what
a Hub was sent by whom, with its routing headers; what a party holds of what
came through the Hub; a party's status as the Hub reports it; the outbox of a
party towards its Hub."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import sqlalchemy as sa

from evroam.modules.hubclientinfo import owner as client_info
from evroam.modules.sessions import owner as sessions
from evroam.node import Node
from evroam.ocpi.cdrs import CDR
from evroam.ocpi.hubclientinfo import ConnectionStatus
from evroam.ocpi.locations import Location
from evroam.ocpi.sessions import Session
from evroam.ocpi.tariffs import Tariff
from evroam.pricing import build_cdr
from evroam.store import objects
from evroam.store.objects import ObjectKey
from evroam.store.tables import outbox as outbox_table
from tests import charging
from tests.clientinfo import status_at
from tests.hubnet import Net
from tests.nodes import wait_for

FUNCTIONAL = ("/sender/", "/receiver/", "/hub/callback/")
HUB, CPO, EMSP1, EMSP2 = ("NL", "HUB"), ("NL", "CPO"), ("DE", "EMS"), ("FR", "EM2")


@dataclass
class Call:
    """One functional request a node received: where, and its OCPI-from/to."""

    method: str
    path: str
    frm: tuple[str, str] | None
    to: tuple[str, str] | None


@dataclass
class Wire:
    """Every functional request `node` (the Hub) receives, as it arrives
    (its callback URLs' included)."""

    calls: list[Call] = field(default_factory=list)

    @classmethod
    def on(cls, node: Node) -> Wire:
        wire = cls()
        app = node.app
        inner = app.middleware_stack or app.build_middleware_stack()

        async def record(scope, receive, send):
            if scope["type"] == "http" and any(p in scope["path"] for p in FUNCTIONAL):
                h = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
                wire.calls.append(Call(scope["method"], scope["path"], _pair(h, "from"), _pair(h, "to")))
            await inner(scope, receive, send)

        app.middleware_stack = record
        return wire

    def to_module(self, module: str) -> list[Call]:
        return [c for c in self.calls if f"/{module}" in c.path and "/hubclientinfo" not in c.path]


def _pair(h: dict[str, str], side: str) -> tuple[str, str] | None:
    cc, pid = h.get(f"ocpi-{side}-country-code"), h.get(f"ocpi-{side}-party-id")
    return (cc, pid) if cc and pid else None


async def held(net: Net, at: str, module: str, cc: str, pid: str, oid: str, type_: str = "") -> dict | None:
    """What party `at` holds of `module` object cc/pid/oid that came through the Hub."""
    async with net[at].engine.connect() as conn:
        s = await objects.get(conn, ObjectKey(module, net.hub_at[at].id, cc, pid, oid, type_))
    return json.loads(s.data) if s else None


async def towards_hub(net: Net, at: str, module: str | None = None) -> list[dict]:
    """Party `at`'s outbox rows to the Hub (its ClientInfo traffic aside)."""
    q = sa.select(outbox_table).where(outbox_table.c.party_id == net.hub_at[at].id)
    if module is not None:
        q = q.where(outbox_table.c.module == module)
    async with net[at].engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(q.order_by(outbox_table.c.id))]


async def drained(net: Net, at: str) -> bool:
    return not await towards_hub(net, at)


async def report(net: Net, name: str, status: ConnectionStatus, *, seen_by: str) -> None:
    """The Hub sets party `name`'s status and tells the others, as liveness
    and `partners suspend`/`resume` do; returns once `seen_by` knows it."""
    reg = await net.at_hub(name)
    await client_info.set_status(net.hub, reg.id, status)
    key = next((r["country_code"], r["party_id"]) for r in reg.roles)
    await wait_for(lambda: _reported(net, seen_by, key, status), timeout=20,
                   what=f"{seen_by} to hear that {name} is {status.value}")


async def _reported(net: Net, at: str, key: tuple[str, str], status: ConnectionStatus) -> bool:
    return await status_at(net, at, *key) == status.value


def priced_cdr(sid: str) -> CDR:
    """The CDR of a completed 20 kWh session `sid` of token DE/EMS, priced
    with tests.charging's tariff T1 at its Location LOC1."""
    s = Session.from_wire(charging.session(sid, status="COMPLETED", end_date_time=charging.ts(100),
                                           periods=[charging.period(0, 20)]))
    loc = Location.from_wire(charging.location())
    cdr, _ = build_cdr(s, Tariff.from_wire(charging.tariff()), sessions.cdr_location(loc, s.evse_uid, "1"),
                       time_zone=loc.time_zone)
    return cdr
