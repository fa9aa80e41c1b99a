"""Broadcast Push: a POST, PUT or PATCH with TO = the Hub on the Receiver of
a broadcast module (Module.broadcast: Locations, Tokens, Tariffs), delivered
to every connected party of the opposite role that implements that Receiver
(transport_and_format, "Broadcast Push"; docs/hub/broadcast.md).

Durable and never stale: the Hub stores the object (under the calling
platform's registration and the owner's cc/pid/id, merged as a Receiver
merges it) and queues one delivery per receiving party in the same
transaction. The outbox coalesces per (receiving party, object), and the
delivery worker always sends the object's latest state, so a restart loses
nothing and a slow party never gets an older version after a newer one.

The caller is answered at once, FROM = the Hub; receivers' errors are the
delivery worker's business (retries, dead letters), never passed back.
Deliveries go FROM = the Hub, TO = the receiving party (`HubAddressing`),
and are dropped, not queued, for a party that is not CONNECTED: one that
comes back re-syncs with a GET.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request

from evroam.hub.directory import opposite, status_of
from evroam.hub.layer import Answer, Hub, HubRefusal, Routed
from evroam.module import REGISTRY, Module
from evroam.ocpi.base import NotJson, error_text, load_json
from evroam.ocpi.headers import Routing
from evroam.ocpi.hubclientinfo import ConnectionStatus
from evroam.ocpi.status import OcpiError, StatusCode
from evroam.ocpi.types import ci_key
from evroam.server import writes
from evroam.server.objects import check_identity, parse_patch
from evroam.server.responses import ocpi_response
from evroam.store import outbox
from evroam.store.objects import ObjectKey
from evroam.store.outbox import Delivery
from evroam.store.parties import Party
from evroam.sync.delivery import Addressing, Outcome, partner_key

# mod_tokens, "Request Parameters": an absent ?type= means RFID.
DEFAULT_TYPE = "RFID"
_OK = bytes(ocpi_response().body)


async def broadcast(hub: Hub, r: Routed) -> Answer:
    """Store, queue for every receiving party, answer (layer.Hub.broadcast)."""
    module = r.module
    if r.method not in ("PUT", "PATCH"):
        raise HubRefusal(StatusCode.CLIENT_ERROR, f"the {module.id} Receiver takes PUT and PATCH, not {r.method}",
                         405)
    key, parts = _key(module, r)
    try:
        merger, body = await _merger(hub, module, r, key, parts)
    except OcpiError as exc:
        raise HubRefusal(exc.status_code, exc.message, exc.http_status) from None
    targets = await receivers(hub, module, r)
    patch = body if r.method == "PATCH" else None
    sub_path = "/".join(parts) or None

    async def queue(conn: AsyncConnection, pk: int, created: bool) -> None:
        if patch is not None and not created:
            await outbox.enqueue(conn, targets, module.id, pk, "PATCH", patch, sub_path, appended=module.appended)
        else:
            await outbox.enqueue(conn, targets, module.id, pk, "PUT")

    try:
        written = await writes.write(hub.engine, module, key, r.caller, merger, then=queue if targets else None)
    except OcpiError as exc:
        raise HubRefusal(exc.status_code, exc.message, exc.http_status) from None
    if written.stored and targets and hub.node is not None and hub.node.delivery is not None:
        hub.node.delivery.notify()
    return Answer(200, _OK, [(b"content-type", b"application/json"), *hub.routing_answer(r.sender)])


async def receivers(hub: Hub, module: Module, r: Routed) -> list[int]:
    """The registrations a broadcast of `module` from `r.sender` goes to:
    every connected party of the opposite role with that Receiver, the
    caller's own platform left out; one delivery per platform."""
    directory = await hub.directory.get()
    sender = directory.find(*r.sender)
    if sender is None:
        return []
    parties = directory.offering(module.id, "RECEIVER", roles=opposite(sender.role), exclude_registration=r.caller.id)
    return sorted({p.registration.id for p in parties})


def _key(module: Module, r: Routed) -> tuple[ObjectKey, list[str]]:
    """The stored object's key: the caller's registration and the URL's
    cc/pid/id, which must name the caller's own sending role (OCPI-from)."""
    segs = r.segments
    if len(segs) < 3 or (len(segs) > 3 and module.message_merger is None):
        raise HubRefusal(StatusCode.CLIENT_ERROR, f"no such {module.id} Receiver path: {r.rest or '/'} "
                         "(expected /{country_code}/{party_id}/{id})", 404)
    cc, pid, oid = segs[:3]
    if (ci_key(cc), ci_key(pid)) != r.sender:
        raise HubRefusal(StatusCode.INVALID_PARAMETERS,
                         f"{cc}/{pid} in the URL is not the party that sends (OCPI-from {r.sender[0]}/{r.sender[1]}):"
                         " a party broadcasts only its own objects")
    return ObjectKey(module.id, r.caller.id, cc, pid, oid, _type_of(module, r)), segs[3:]


def _type_of(module: Module, r: Routed) -> str:
    if not module.typed:
        return ""
    raw = (parse_qs(r.query).get("type") or [DEFAULT_TYPE])[0]
    enum = module.model.model_fields["type"].annotation
    try:
        return enum(raw).value
    except ValueError:
        raise HubRefusal(StatusCode.INVALID_PARAMETERS, f"type: {raw!r} is not a {enum.__name__} "
                         f"({', '.join(t.value for t in enum)})") from None


async def _merger(hub: Hub, module: Module, r: Routed, key: ObjectKey,
                  parts: list[str]) -> tuple[writes.Merger, dict[str, Any]]:
    """The message, judged as a Receiver judges it, and how it merges into
    the stored document: the module's own merge (Module.message_merger),
    else the generic PUT and PATCH merges of server/writes.py."""
    if r.method == "PATCH":
        body = await parse_patch(_request(r))
    else:
        body = _json(r.body)
    if module.message_merger is not None:
        config = getattr(hub.node, "config", None)
        return module.message_merger(r.method, body, parts, key, config), body
    if r.method == "PATCH":
        return writes.patch_merger(module, key, body, module.merge), body
    try:
        obj = module.model.from_wire(body)
    except ValidationError as exc:
        raise OcpiError(StatusCode.INVALID_PARAMETERS, error_text(exc)) from None
    check_identity(obj, module, key.country_code, key.party_id, key.object_id)
    if module.typed and obj.type.value != key.type:
        raise OcpiError(StatusCode.INVALID_PARAMETERS,
                        f"type: {obj.type.value!r} in the body differs from {key.type!r} in the URL")
    return writes.put_merger(obj), body


def _json(raw: bytes) -> Any:
    try:
        return load_json(raw)
    except NotJson as exc:
        raise OcpiError(StatusCode.CLIENT_ERROR, f"request body is not valid JSON: {exc}", http_status=400) from None


def _request(r: Routed) -> Request:
    """The request as the Receiver helpers read it, its body already taken by the layer."""
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": r.body, "more_body": False}

    return Request(r.scope, receive)


class HubAddressing(Addressing):
    """A Hub's deliveries: FROM = the Hub, TO = the receiving party (the
    URL keeps the owner's cc/pid: it is built from the stored document).
    A party that is not CONNECTED gets nothing: its delivery is dropped
    rather than kept, since a party that comes back re-syncs with a GET."""

    def __init__(self, hub_key: tuple[str, str]) -> None:
        self.hub_key = hub_key

    def routing(self, party: Party, module: Module, doc: dict) -> Routing | None:
        if not module.routed:
            return None
        return Routing(self.hub_key[0], self.hub_key[1], *(partner_key(party, module) or (None, None)))

    async def hold(self, party: Party, d: Delivery, doc: dict) -> Outcome | None:
        status = status_of(party)
        # A configuration module's push (HubClientInfo) is the Hub's own: whom it goes to is decided there.
        if status != ConnectionStatus.CONNECTED and REGISTRY[d.module].routed:
            return Outcome(f"party is {status.value}: dropped (it re-syncs with a GET)", gone=True)
        return None


