"""Open Routing Requests: no OCPI-to, so the Hub picks the receiver from the
content (transport_and_format, "Open Routing Request"; docs/hub/open-routing.md
has the table of rules).

The generic part is here: which requests may be open-routed at all, the
lookups a rule needs (the owner of a broadcast object the Hub holds, a route
learnt while forwarding), and the forward with TO = the chosen receiver and
FROM = the original client. Which field of which request names the receiver
is the module's own rule (`Module.route`, in modules/<module>/routing.py).

- A GET of a Sender list is a GET All, which needs TO = the Hub: 2001.
- A push (POST, PUT, PATCH) of broadcast data (Module.broadcast) to a
  Receiver names only its sender in the client-owned URL: the Hub cannot
  tell one receiver, and the spec says it then broadcasts. It is a Broadcast
  Push.
- A Receiver GET of one client-owned object names its owner, the caller:
  the receiver cannot be told, 4001.
- Anything else: the module's rule, or 4001 when it has none or cannot tell.

Only open-routed requests have their JSON body parsed, and each lookup is
one index lookup (objects (module, oid_key); hub_routes' unique key).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, NamedTuple, NoReturn
from urllib.parse import parse_qs

import sqlalchemy as sa
import structlog
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from evroam.hub.forward import send_to
from evroam.hub.layer import PUSH_METHODS, Answer, Hub, HubRefusal, Key, Routed, target_of
from evroam.ocpi.status import StatusCode
from evroam.ocpi.types import ci_key, utcnow
from evroam.ocpi.versions import InterfaceRole
from evroam.store.tables import OURS, hub_routes, objects

log = structlog.get_logger(__name__)

ADDRESS_IT = "address the receiver in OCPI-to-country-code and OCPI-to-party-id"
REF_MAX = 36  # CiString(36): session_id, reservation_id

_HOLDERS = (sa.select(objects.c.cc_key, objects.c.pid_key).distinct()
            .where(objects.c.module == sa.bindparam("m"), objects.c.oid_key == sa.bindparam("oid"),
                   objects.c.type_key == sa.bindparam("t"), objects.c.owner_id != OURS,
                   objects.c.stale.is_(False))
            .limit(3))
_LEARNT = (sa.select(hub_routes.c.from_cc, hub_routes.c.from_pid, hub_routes.c.to_cc, hub_routes.c.to_pid)
           .where(hub_routes.c.module == sa.bindparam("m"), hub_routes.c.ref_key == sa.bindparam("ref"))
           .order_by(hub_routes.c.id).limit(10))


class Route(NamedTuple):
    """A route learnt while forwarding: `frm` spoke to `to` about an object."""

    frm: Key
    to: Key


class OpenRequest:
    """What a module's rule (Module.route) reads of an Open Routing Request."""

    def __init__(self, hub: Hub, routed: Routed) -> None:
        self.hub = hub
        self.routed = routed
        self._body: Any = None

    @property
    def method(self) -> str:
        return self.routed.method

    @property
    def iface(self) -> InterfaceRole:
        return self.routed.iface

    @property
    def segments(self) -> list[str]:
        return self.routed.segments

    @property
    def caller(self) -> Key:
        """The requesting party (its OCPI-from, checked)."""
        return self.routed.sender

    def param(self, name: str) -> str | None:
        values = parse_qs(self.routed.query).get(name)
        return values[0] if values else None

    def body(self) -> dict[str, Any]:
        """The JSON body, parsed once; 2001 when it is no JSON object."""
        if self._body is None:
            try:
                self._body = json.loads(self.routed.body or b"null")
            except ValueError:
                self._body = False
        if not isinstance(self._body, dict):
            raise HubRefusal(StatusCode.INVALID_PARAMETERS, "the body is not a JSON object, so the Hub cannot "
                             f"route it by its content; {ADDRESS_IT}", 400)
        return self._body

    def text(self, *path: str) -> str | None:
        """A string field of the body (`text("cdr_token", "party_id")`), or None."""
        value: Any = self.body()
        for name in path:
            value = value.get(name) if isinstance(value, dict) else None
        return value if isinstance(value, str) and value else None

    def party_at(self, field: str) -> Key | None:
        """The country_code/party_id of the body's object `field` (a CdrToken's: its eMSP)."""
        cc, pid = self.text(field, "country_code"), self.text(field, "party_id")
        return (ci_key(cc), ci_key(pid)) if cc and pid else None

    async def holder(self, module_id: str, object_id: str, type_: str = "") -> Key | None:
        """The owner (country_code/party_id) of the `module_id` object with
        this id that the Hub holds from a Broadcast Push; None when it holds
        none. Held from several owners: the Hub cannot tell, 4001."""
        async with self.hub.engine.connect() as conn:
            rows = (await conn.execute(_HOLDERS, {"m": module_id, "oid": ci_key(object_id),
                                                  "t": type_})).all()
        if len(rows) > 1:
            self.cannot_tell(f"{module_id} {object_id!r} is held from several parties "
                             f"({', '.join(f'{r.cc_key}/{r.pid_key}' for r in rows)})")
        return (rows[0].cc_key, rows[0].pid_key) if rows else None

    async def learnt(self, module_id: str, ref: str) -> list[Route]:
        """The routes learnt for object `ref` of `module_id` (Module.learn), oldest first."""
        async with self.hub.engine.connect() as conn:
            rows = (await conn.execute(_LEARNT, {"m": module_id, "ref": ci_key(ref)})).all()
        return [Route((r.from_cc, r.from_pid), (r.to_cc, r.to_pid)) for r in rows]

    async def counterpart(self, module_id: str, ref: str) -> Key | None:
        """The other party of the learnt routes of `ref` the caller is in
        (it sent them, or they were sent to it); None when it is in none."""
        others = {rt.to if rt.frm == self.caller else rt.frm
                  for rt in await self.learnt(module_id, ref) if self.caller in rt}
        if len(others) > 1:
            self.cannot_tell(f"{module_id} {ref!r} was routed between you and several parties "
                             f"({', '.join(sorted('/'.join(k) for k in others))})")
        return others.pop() if others else None

    def cannot_tell(self, why: str) -> NoReturn:
        raise HubRefusal(StatusCode.HUB_UNKNOWN_RECEIVER, f"open routing: {why}; {ADDRESS_IT}")


async def open_route(hub: Hub, r: Routed) -> Answer:
    """The Hub's handler of requests without OCPI-to (Hub.open_route)."""
    m = r.module
    if r.method == "GET" and r.iface == InterfaceRole.SENDER and not r.segments:
        raise HubRefusal(StatusCode.INVALID_PARAMETERS,
                         f"a GET of the {m.id} Sender list is a GET All, which is no Open Routing Request: "
                         f"set OCPI-to to the Hub ({hub.key[0]}/{hub.key[1]}) to get the merged list, "
                         "or to the party whose list you want", 400)
    if r.method in PUSH_METHODS and r.iface == InterfaceRole.RECEIVER and m.broadcast:
        return await _as_broadcast(hub, r)
    req = OpenRequest(hub, r)
    if r.method == "GET" and r.iface == InterfaceRole.RECEIVER and m.stores_objects:
        req.cannot_tell(f"a Receiver GET of one {m.id} object names its owner, which is you: "
                        "the Hub cannot tell whose copy you want")
    key = await m.route(req) if m.route is not None else None
    if key is None:
        req.cannot_tell(f"the Hub has no rule that tells the receiver of a {r.method} to the {m.id} "
                        f"{r.iface.value.lower()} interface from its content")
    if key == r.sender or key == hub.key:
        req.cannot_tell(f"the content names {key[0]}/{key[1]}, which is {'you' if key == r.sender else 'the Hub'}")
    target = target_of((await hub.directory.get()).find(*key), key)
    return await send_to(hub, r, target, target.key)


async def _as_broadcast(hub: Hub, r: Routed) -> Answer:
    """A push of broadcast data without TO: the URL names only the sender
    (client-owned objects), so the destination cannot be told, and "the Hub
    can then decide ... that it needs to be broadcasted"."""
    if hub.broadcast is None:
        raise HubRefusal(StatusCode.HUB_ERROR, "this Hub does not broadcast; "
                         "address the receiver in OCPI-to")
    return await hub.broadcast(hub, dataclasses.replace(r, to=hub.key))


class Learner:
    """An after-forward hook of the Hub (Hub.after_forward): keeps the routes
    the modules learn from what the Hub forwarded (Module.learn), one row per
    object id and FROM, written once. Forwarding is not held up again for an
    object this process already wrote: it remembers up to `known_max` of them."""

    def __init__(self, known_max: int = 100_000) -> None:
        self.known_max = known_max
        self._known: set[tuple[str, str, Key]] = set()

    async def __call__(self, hub: Hub, r: Routed, to_key: Key, http_status: int) -> None:
        learn = r.module.learn
        if learn is None or not 200 <= http_status < 300:
            return
        ref = learn(r)
        if not ref or len(ref) > REF_MAX:
            return
        ident = (r.module.id, ci_key(ref), r.sender)
        if ident in self._known:
            return
        values = {"module": r.module.id, "ref_key": ident[1], "from_cc": r.sender[0], "from_pid": r.sender[1],
                  "to_cc": ci_key(to_key[0]), "to_pid": ci_key(to_key[1]), "created_at": utcnow()}
        async with hub.engine.begin() as conn:
            insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            await conn.execute(insert(hub_routes).values(**values).on_conflict_do_nothing())
        if len(self._known) >= self.known_max:
            self._known.clear()
        self._known.add(ident)
        log.debug("hub.route_learnt", module=r.module.id, ref=ref, frm="/".join(r.sender), to="/".join(to_key))
