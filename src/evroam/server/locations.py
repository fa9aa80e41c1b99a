"""Locations module (mod_locations.asciidoc): Sender (CPO) and Receiver (eMSP) routers.

A Location is stored as one document with its EVSEs and Connectors inside, so
a PUT or PATCH of an EVSE or Connector is a read-modify-write of its Location.

Visibility: the Sender serves (and publish() pushes) Locations with
`publish=false` too. The flag says whether the *Receiver* may show the
Location in an app or on a website: only to owners of Tokens that match one
`publish_allowed_to` entry. The spec's uc3 example ("not published, but paid
guest usage possible") relies on the eMSP having the Location. A Location
that must not reach partners at all ("Private charging Locations … SHALL NOT
be published via OCPI") is simply never published by us. Matching
`publish_allowed_to` against end users' Tokens is up to the Receiver's
apps, and out of scope here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from evroam.ocpi.base import dumps
from evroam.ocpi.locations import EVSE, Connector, Location
from evroam.ocpi.modules import LOCATIONS
from evroam.ocpi.status import invalid, not_found
from evroam.ocpi.types import ci_key, parse_datetime
from evroam.server import objects as common
from evroam.server.auth import authenticate_registered
from evroam.server.body import parse_body
from evroam.server.hooks import Received
from evroam.server.responses import ocpi_response
from evroam.store import objects as repo
from evroam.store.objects import ObjectKey
from evroam.store.parties import Authenticated
from evroam.store.locations import (
    LocationLimits,
    duplicate_connector_ids,
    find_connector,
    find_evse,
    index_of,
    later,
    location_lock,
    refusal,
)

sender = APIRouter()
receiver = APIRouter()

LOC = "/{location_id}"
EVSE_PATH = "/{location_id}/{evse_uid}"
CONN = "/{location_id}/{evse_uid}/{connector_id}"
RX = "/{country_code}/{party_id}"

SAME = "same version as stored"
OLDER = "older than the stored version; kept"


def _find_evse(doc: dict[str, Any], evse_uid: str) -> dict[str, Any]:
    try:
        return find_evse(doc, evse_uid)
    except LookupError as exc:
        raise not_found(str(exc)) from None


def _find_connector(evse: dict[str, Any], connector_id: str) -> dict[str, Any]:
    try:
        return find_connector(evse, connector_id)
    except LookupError as exc:
        raise not_found(str(exc)) from None


def _child(data: str, evse_uid: str, connector_id: str | None) -> bytes:
    evse = _find_evse(json.loads(data), evse_uid)
    return dumps(_find_connector(evse, connector_id) if connector_id is not None else evse)


# --- Sender -------------------------------------------------------------------------------


@sender.get("")
async def get_locations(request: Request):  # noqa: ANN201
    return await common.sender_list(request, LOCATIONS)


@sender.get(LOC)
async def get_location(request: Request, location_id: str):  # noqa: ANN201
    await authenticate_registered(request)
    data = await common.sender_get_one(request, LOCATIONS, location_id)
    return common.respond(request, data_json=data.encode())


@sender.get(EVSE_PATH)
async def get_evse(request: Request, location_id: str, evse_uid: str):  # noqa: ANN201
    await authenticate_registered(request)
    data = await common.sender_get_one(request, LOCATIONS, location_id)
    return common.respond(request, data_json=_child(data, evse_uid, None))


@sender.get(CONN)
async def get_connector(request: Request, location_id: str, evse_uid: str, connector_id: str):  # noqa: ANN201
    await authenticate_registered(request)
    data = await common.sender_get_one(request, LOCATIONS, location_id)
    return common.respond(request, data_json=_child(data, evse_uid, connector_id))


# --- Receiver: GET ----------------------------------------------------------------------------


async def _auth(request: Request, cc: str, pid: str) -> Authenticated:
    # Before the body is read: a stranger learns nothing from how it is judged.
    auth = await authenticate_registered(request)
    common.require_own_keys(auth.party, cc, pid)
    return auth


async def _receiver_get(request: Request, cc: str, pid: str, location_id: str, evse_uid: str | None = None,
                        connector_id: str | None = None) -> Response:
    if evse_uid is None:
        return await common.receiver_get(request, LOCATIONS, cc, pid, location_id)
    auth = await _auth(request, cc, pid)
    async with common.ctx_of(request).engine.connect() as conn:
        stored = await repo.get(conn, ObjectKey(LOCATIONS.id, auth.party.id, cc, pid, location_id))
    if stored is None:
        raise not_found(f"unknown location {cc}/{pid}/{location_id}")
    return common.respond(request, data_json=_child(stored.data, evse_uid, connector_id))


@receiver.get(RX + LOC)
async def rx_get_location(request: Request, country_code: str, party_id: str, location_id: str):  # noqa: ANN201
    return await _receiver_get(request, country_code, party_id, location_id)


@receiver.get(RX + EVSE_PATH)
async def rx_get_evse(request: Request, country_code: str, party_id: str, location_id: str,  # noqa: ANN201
                      evse_uid: str):
    return await _receiver_get(request, country_code, party_id, location_id, evse_uid)


@receiver.get(RX + CONN)
async def rx_get_connector(request: Request, country_code: str, party_id: str, location_id: str,  # noqa: ANN201
                           evse_uid: str, connector_id: str):
    return await _receiver_get(request, country_code, party_id, location_id, evse_uid, connector_id)


# --- Receiver: writes ---------------------------------------------------------------------------

# Changes the stored Location document in place. Returns True when it created
# the addressed EVSE or Connector (201), False when it replaced or merged it,
# or a message when the stored version was kept (a repeated or older push).
Change = Callable[[dict[str, Any]], bool | str]


def _kept(current: dict[str, Any], new: dict[str, Any]) -> str | None:
    """Delivery is at-least-once: the same version again is a no-op, and an
    older one never overwrites a newer one (as server/objects.receiver_put)."""
    if current == new:
        return SAME
    if parse_datetime(current["last_updated"]) > parse_datetime(new["last_updated"]):
        return OLDER
    return None


async def _write(request: Request, auth: Authenticated, cc: str, pid: str, location_id: str,
                 change: Change | None = None, location: Location | None = None, patch: bool = False) -> Response:
    """Store a whole `location` (PUT) or apply `change` to the stored one.
    A change never creates its Location: an unknown one is 404. The Location
    that results is validated as a whole before anything is written."""
    ctx = common.ctx_of(request)
    key = ObjectKey(LOCATIONS.id, auth.party.id, cc, pid, location_id)
    if location is not None:
        # Judged on its own, so before the transaction: its lock is held no longer than needed.
        _check(location, cc, pid, location_id, ctx.location_limits)
        data = location.to_json_bytes().decode()
    async with location_lock(id(ctx.engine), auth.party.id, cc, pid, location_id):
        async with ctx.engine.begin() as conn:
            stored = await repo.get(conn, key, for_update=True)
            if location is not None:
                outcome: bool | str = stored is None
                if stored is not None and stored.data == data:
                    outcome = SAME
                elif stored is not None and stored.last_updated > location.last_updated:
                    outcome = OLDER
            else:
                assert change is not None
                if stored is None:
                    raise not_found(f"unknown location {cc}/{pid}/{location_id}" + (": PUT it first" if patch else ""))
                doc = json.loads(stored.data)
                outcome = change(doc)
                if not isinstance(outcome, str):
                    location = common.validate_merged(Location, doc) if patch else Location.from_wire(doc)
                    _check(location, cc, pid, location_id, ctx.location_limits)
                    data = location.to_json_bytes().decode()
            if isinstance(outcome, str):
                return ocpi_response(status_message=outcome)
            assert location is not None
            await repo.save(conn, key, stored, data, location.last_updated)
    await ctx.hooks.fire(Received.LOCATION, location, auth.party)
    return common.respond(request, http_status=201 if outcome else 200)


def _check(location: Location, cc: str, pid: str, location_id: str, limits: LocationLimits) -> None:
    common.check_identity(location, LOCATIONS, cc, pid, location_id)
    why = refusal(location, limits)
    if why:
        raise invalid(why)


def _same_id(field: str, value: object, expected: str) -> None:
    if not isinstance(value, str) or ci_key(value) != ci_key(expected):
        raise invalid(f"{field}: {value!r} in the body differs from {expected!r} in the URL")


@receiver.put(RX + LOC)
async def rx_put_location(request: Request, country_code: str, party_id: str, location_id: str):  # noqa: ANN201
    auth = await _auth(request, country_code, party_id)
    location = await parse_body(request, Location)
    return await _write(request, auth, country_code, party_id, location_id, location=location)


@receiver.put(RX + EVSE_PATH)
async def rx_put_evse(request: Request, country_code: str, party_id: str, location_id: str,  # noqa: ANN201
                      evse_uid: str):
    auth = await _auth(request, country_code, party_id)
    evse = await parse_body(request, EVSE)
    _same_id("uid", evse.uid, evse_uid)
    dup = duplicate_connector_ids(evse)
    if dup:
        raise invalid(dup)
    wire = evse.to_wire()

    def change(doc: dict[str, Any]) -> bool | str:
        evses = doc.setdefault("evses", [])
        i = index_of(evses, "uid", evse_uid)
        if i is None:
            evses.append(wire)
        else:
            kept = _kept(evses[i], wire)
            if kept:
                return kept
            evses[i] = wire
        doc["last_updated"] = later(doc["last_updated"], wire["last_updated"])
        return i is None

    return await _write(request, auth, country_code, party_id, location_id, change)


@receiver.put(RX + CONN)
async def rx_put_connector(request: Request, country_code: str, party_id: str, location_id: str,  # noqa: ANN201
                           evse_uid: str, connector_id: str):
    auth = await _auth(request, country_code, party_id)
    connector = await parse_body(request, Connector)
    _same_id("id", connector.id, connector_id)
    wire = connector.to_wire()

    def change(doc: dict[str, Any]) -> bool | str:
        evse = _find_evse(doc, evse_uid)  # a Connector under an unknown EVSE: 404 (ocpi/ocpi#406)
        j = index_of(evse["connectors"], "id", connector_id)
        if j is None:
            evse["connectors"].append(wire)
        else:
            kept = _kept(evse["connectors"][j], wire)
            if kept:
                return kept
            evse["connectors"][j] = wire
        evse["last_updated"] = later(evse["last_updated"], wire["last_updated"])
        doc["last_updated"] = later(doc["last_updated"], wire["last_updated"])
        return j is None

    return await _write(request, auth, country_code, party_id, location_id, change)


def _merge(current: dict[str, Any], patch: dict[str, Any], model: type[EVSE] | type[Connector] | None = None
           ) -> dict[str, Any] | str:
    """The patched object in wire form, or why the stored one is kept. The
    result is validated here, so a 2001 names the field of the object the
    URL addresses."""
    merged: dict[str, Any] = {**current, **patch}
    if model is not None:
        merged = common.validate_merged(model, merged).to_wire()
    return _kept(current, merged) or merged


@receiver.patch(RX + LOC)
async def rx_patch_location(request: Request, country_code: str, party_id: str, location_id: str):  # noqa: ANN201
    auth = await _auth(request, country_code, party_id)
    patch = await common.parse_patch(request)

    def change(doc: dict[str, Any]) -> bool | str:
        # Validated as a whole Location by _write; last_updated may be in any
        # form DateTime allows, so compare it parsed.
        merged = _merge(doc, patch)
        if isinstance(merged, str):
            return merged
        doc.update(merged)
        return False

    return await _write(request, auth, country_code, party_id, location_id, change, patch=True)


@receiver.patch(RX + EVSE_PATH)
async def rx_patch_evse(request: Request, country_code: str, party_id: str, location_id: str,  # noqa: ANN201
                        evse_uid: str):
    auth = await _auth(request, country_code, party_id)
    patch = await common.parse_patch(request)
    if "uid" in patch:
        _same_id("uid", patch["uid"], evse_uid)

    def change(doc: dict[str, Any]) -> bool | str:
        evse = _find_evse(doc, evse_uid)  # a PATCH never creates
        merged = _merge(evse, patch, EVSE)
        if isinstance(merged, str):
            return merged
        evse.clear()
        evse.update(merged)
        doc["last_updated"] = later(doc["last_updated"], merged["last_updated"])
        return False

    return await _write(request, auth, country_code, party_id, location_id, change, patch=True)


@receiver.patch(RX + CONN)
async def rx_patch_connector(request: Request, country_code: str, party_id: str, location_id: str,  # noqa: ANN201
                             evse_uid: str, connector_id: str):
    auth = await _auth(request, country_code, party_id)
    patch = await common.parse_patch(request)
    if "id" in patch:
        _same_id("id", patch["id"], connector_id)

    def change(doc: dict[str, Any]) -> bool | str:
        evse = _find_evse(doc, evse_uid)
        connector = _find_connector(evse, connector_id)
        merged = _merge(connector, patch, Connector)
        if isinstance(merged, str):
            return merged
        connector.clear()
        connector.update(merged)
        evse["last_updated"] = later(evse["last_updated"], merged["last_updated"])
        doc["last_updated"] = later(doc["last_updated"], merged["last_updated"])
        return False

    return await _write(request, auth, country_code, party_id, location_id, change, patch=True)
