"""What a party connected to a Hub knows of the parties behind it: the
ClientInfo objects the Hub pushed to our Receiver (or we pulled from its
Sender), stored under the Hub's registration with the described party's
country_code/party_id as keys.

Both lookups are index lookups on the objects table: one key for a status,
one (module, owner) range for the list. `parties_behind` is what the node
gives the pulls through a Hub (sync/behind_pull.py), and `watch` turns a
party's CONNECTED into a pull of its objects (docs/hub/behind-pull.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from evroam.module import REGISTRY
from evroam.modules.events import Received
from evroam.modules.hubclientinfo import MODULE
from evroam.ocpi.hubclientinfo import ClientInfo, ConnectionStatus
from evroam.ocpi.types import ci_key, utcnow
from evroam.store import objects
from evroam.store.objects import ObjectKey
from evroam.store.parties import Party
from evroam.store.tables import objects as objects_table
from evroam.server.routing import is_hub
from evroam.sync.pull import sends
from evroam.sync.scheduler import owner_pull_due, pull_modules


@dataclass(frozen=True, slots=True)
class PartyBehind:
    """One party the Hub told us about."""

    country_code: str
    party_id: str
    role: str
    status: ConnectionStatus
    last_updated: str


async def status_behind(conn: AsyncConnection, hub_id: int, country_code: str, party_id: str) -> ConnectionStatus | None:
    """The status the Hub (registration `hub_id`) last reported for cc/pid,
    or None when it reported nothing for that party."""
    stored = await objects.get(conn, ObjectKey(MODULE.id, hub_id, country_code, party_id, party_id))
    if stored is None:
        return None
    return ConnectionStatus(json.loads(stored.data)["status"])


async def parties_behind(conn: AsyncConnection, hub_id: int) -> list[PartyBehind]:
    """Every party the Hub (registration `hub_id`) reported, in the order first reported."""
    rows = await conn.execute(
        sa.select(objects_table.c.data)
        .where(objects_table.c.module == MODULE.id, objects_table.c.owner_id == hub_id)
        .order_by(objects_table.c.id))
    out = []
    for data in rows.scalars():
        doc = json.loads(data)
        out.append(PartyBehind(doc["country_code"], doc["party_id"], doc["role"],
                               ConnectionStatus(doc["status"]), doc["last_updated"]))
    return out


def watch(node: Any) -> None:
    """A party behind our Hub reported CONNECTED (pushed or pulled: it joined,
    came back from OFFLINE, was resumed) gets a full pull of its own objects,
    `hub_reconnect_pull_s` later, of each module we pull from the Hub that
    its role sends (sync/scheduler.owner_pull_due)."""

    async def connected(info: ClientInfo, party: Party) -> None:
        if info.status != ConnectionStatus.CONNECTED or not is_hub(party):
            return
        roles = [r.role for r in node.config.roles]
        modules = [m for m in pull_modules(party, roles)
                   if REGISTRY[m].routed and sends(REGISTRY[m], info.role.value)]
        if modules:
            at = utcnow() + timedelta(seconds=node.config.hub_reconnect_pull_s)
            await owner_pull_due(node.engine, party, (ci_key(info.country_code), ci_key(info.party_id)), modules, at)

    node.hooks.listen(Received.CLIENT_INFO, connected)
