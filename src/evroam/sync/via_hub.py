"""Deliveries of a party behind a Hub (transport_and_format, "Message
Routing"; docs/hub/behind.md).

A partner that is a Hub stands for every party connected to it, so what we
push to it says whom it is for:

- data meant for every party (`Module.broadcast`: Locations, Tariffs,
  Tokens) goes once, TO = the Hub: a Broadcast Push, which the Hub passes on
  to each party of the opposite role;
- data for one party (`Module.addressee`: a Session or CDR, its token's
  eMSP) goes TO = that party, and the Hub forwards it.

FROM is always the object's owner, one of our roles. What the Hub last
reported of the addressee (HubClientInfo, looked up through `status`, wired
in by the node) decides whether it goes now: to an OFFLINE or PLANNED party
a delivery is held (kept, untried, until the Hub says it is CONNECTED
again), to a SUSPENDED one it is dropped. A party the Hub told us nothing
about is sent to: the Hub answers for it.

A direct (non-Hub) partner is addressed as before (`Addressing`).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from evroam.module import REGISTRY, Module
from evroam.ocpi.headers import Routing
from evroam.ocpi.hubclientinfo import ConnectionStatus
from evroam.server.routing import is_hub
from evroam.store import objects
from evroam.store.outbox import Delivery
from evroam.store.parties import Party
from evroam.sync.delivery import Addressing, Outcome, partner_key
from evroam.sync.tracker import SendError

# `await status(hub_registration_id, cc, pid)`: what that Hub last reported
# of the party cc/pid, None when it reported nothing.
StatusLookup = Callable[[int, str, str], Awaitable[ConnectionStatus | None]]

HELD_BACK = frozenset({ConnectionStatus.OFFLINE, ConnectionStatus.PLANNED})


def addressee(party: Party, module: Module, doc: dict) -> tuple[str, str] | None:
    """Whom a delivery of `doc` to the Hub `party` is for: the Hub itself for
    broadcast data, else the module's addressee of the object (None: unknown)."""
    if module.broadcast:
        return partner_key(party, module)
    return module.addressee(doc) if module.addressee is not None else None


class ViaHub(Addressing):
    """The addressing of a node that is no Hub: through a Hub partner as the
    module docstring says, to a direct partner as `Addressing` does."""

    def __init__(self, status: StatusLookup) -> None:
        self.status = status

    def routing(self, party: Party, module: Module, doc: dict) -> Routing | None:
        if not module.routed or not is_hub(party):
            return super().routing(party, module, doc)
        # No TO where the object names no addressee: an Open Routing Request,
        # which the Hub routes by the content (docs/hub/open-routing.md).
        return Routing(doc.get("country_code", ""), doc.get("party_id", ""),
                       *(addressee(party, module, doc) or (None, None)))

    async def hold(self, party: Party, d: Delivery, doc: dict) -> Outcome | None:
        module = REGISTRY[d.module]
        if not module.routed or module.broadcast or not is_hub(party):
            return None
        to = addressee(party, module, doc)
        if to is None:
            return None
        status = await self.status(party.id, *to)
        if status == ConnectionStatus.SUSPENDED:
            return Outcome(f"{to[0]}/{to[1]} is SUSPENDED at the Hub: dropped", gone=True)
        if status in HELD_BACK:
            return Outcome(f"{to[0]}/{to[1]} is {status.value} at the Hub", held=True)
        return None


async def cpo_behind(engine: AsyncEngine, hub: Party, module_id: str, object_id: str | None) -> tuple[str, str]:
    """The party behind the Hub `hub` that owns the object `object_id` of
    `module_id` we hold from it (a CPO's Location or Session): where a request
    about that object goes (commands, charging profiles). SendError when we
    hold none, so the caller names the party (`to=`)."""
    stored = None
    if object_id is not None:
        async with engine.connect() as conn:
            stored = await objects.find_any_owner(conn, module_id, object_id, hub.id)
    if stored is None:
        raise SendError(f"{hub.name} is a Hub and we hold no {module_id} {object_id!r} from it: "
                        "say which CPO the request is for (to=(country_code, party_id))")
    doc = json.loads(stored.data)
    return doc["country_code"], doc["party_id"]
