"""Locations, Receiver interface (the eMSP): GET, PUT and PATCH of a CPO's
Location, EVSE or Connector at /{country_code}/{party_id}/{location_id}[/{evse_uid}[/{connector_id}]].

A Location is stored as one document with its EVSEs and Connectors inside,
so a PUT or PATCH of an EVSE or Connector is a read-modify-write of its
Location, merged level by level and field by field (merge.py,
docs/ordering.md), under the per-Location lock and the limits of rules.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from evroam.ocpi.base import error_text
from evroam.ocpi.locations import EVSE, Connector, Location
from evroam.modules.locations import MODULE as LOCATIONS
from evroam.ocpi.status import invalid, not_found
from evroam.ocpi.types import ci_key, parse_datetime
from evroam.server import objects as common
from evroam.server.auth import authenticate_registered
from evroam.server.body import parse_body
from evroam.server import writes
from evroam.server.writes import Outcome
from evroam.store import objects as repo
from evroam.store.objects import ObjectKey, Stored
from evroam.store.parties import Authenticated
from evroam.modules.locations import merge
from evroam.modules.locations.rules import (
    child_json,
    LocationLimits,
    UnknownLocationObject,
    duplicate_connector_ids,
    find_connector,
    find_evse,
    location_lock,
    refusal,
)

router = APIRouter()

LOC = "/{location_id}"
EVSE_PATH = "/{location_id}/{evse_uid}"
CONN = "/{location_id}/{evse_uid}/{connector_id}"
RX = "/{country_code}/{party_id}"

# --- Receiver: GET ----------------------------------------------------------------------------


async def _auth(request: Request, cc: str, pid: str) -> Authenticated:
    # Before the body is read: a stranger learns nothing from how it is judged.
    auth = await authenticate_registered(request)
    common.check_caller(LOCATIONS, auth.party, cc, pid)
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
    return common.respond(request, data_json=child_json(stored.data, evse_uid, connector_id))


@router.get(RX + LOC)
async def rx_get_location(request: Request, country_code: str, party_id: str, location_id: str):
    return await _receiver_get(request, country_code, party_id, location_id)


@router.get(RX + EVSE_PATH)
async def rx_get_evse(request: Request, country_code: str, party_id: str, location_id: str,
                      evse_uid: str):
    return await _receiver_get(request, country_code, party_id, location_id, evse_uid)


@router.get(RX + CONN)
async def rx_get_connector(request: Request, country_code: str, party_id: str, location_id: str,
                           evse_uid: str, connector_id: str):
    return await _receiver_get(request, country_code, party_id, location_id, evse_uid, connector_id)


# --- Receiver: writes ---------------------------------------------------------------------------
#
# Messages may arrive in any order (at-least-once delivery, several
# connections): each is merged level by level and field by field, as
# docs/ordering.md describes (evroam.modules.locations.merge). A message that
# changes nothing, being older than what is stored or the same again, is
# answered with success and fires no hook.


async def _write(request: Request, auth: Authenticated, cc: str, pid: str, location_id: str, method: str,
                 body: dict[str, Any], evse_uid: str | None = None, connector_id: str | None = None) -> Response:
    """Merge one message into the stored Location, through the Receiver's
    one write path (server/writes.py) with the Locations merge."""
    ctx = common.ctx_of(request)
    key = ObjectKey(LOCATIONS.id, auth.party.id, cc, pid, location_id)
    merger = partial(_merge, method, body, evse_uid, connector_id, key, ctx.location_limits)
    async with location_lock(id(ctx.engine), auth.party.id, cc, pid, location_id):
        written = await writes.write(ctx.engine, LOCATIONS, key, auth.party, merger)
    return await writes.settle(request, LOCATIONS, written)


def _merge(method: str, body: dict[str, Any], evse_uid: str | None, connector_id: str | None, key: ObjectKey,
           limits: LocationLimits, stored: Stored | None) -> writes.Merged:
    """The Location that results from one message. Only a Location PUT
    creates a Location: anything else for an unknown one is 404. The
    Location that results is validated as a whole before anything is
    written."""
    before = merge.load(stored.data, stored.note) if stored is not None else None
    try:
        held, created = merge.receive(before, method, body, evse_uid, connector_id)
    except UnknownLocationObject as exc:
        what = f"unknown location {key.country_code}/{key.party_id}/{key.object_id}" if before is None else str(exc)
        raise not_found(what + (": PUT it first" if method == merge.PATCH else "")) from None
    location = _validated(held.doc, method, evse_uid, connector_id)
    _check(location, key.country_code, key.party_id, key.object_id, limits)
    data = location.to_json_bytes().decode()
    # The field versions, so that a late message is judged against them.
    note = merge.dump_versions(held, data)
    kept = _kept(before, body, evse_uid, connector_id) if stored is not None and stored.data == data else None
    return writes.Merged(location, data, kept, note, created)


def _validated(doc: dict[str, Any], method: str, evse_uid: str | None, connector_id: str | None) -> Location:
    """The merged Location; a PATCH that makes it invalid is 2001 naming the
    field of the object the URL addresses."""
    if method == merge.PATCH:
        if evse_uid is not None:
            target = _target(doc, evse_uid, connector_id)
            if target is not None:
                common.validate_merged(EVSE if connector_id is None else Connector, target)
        return common.validate_merged(Location, doc)
    try:
        return Location.from_wire(doc)
    except ValidationError as exc:
        raise invalid("the Location merged with the one we hold is invalid: " + error_text(exc)) from None


def _target(doc: dict[str, Any], evse_uid: str | None, connector_id: str | None) -> dict[str, Any] | None:
    """The object a URL addresses; None for a Connector a newer EVSE removed."""
    try:
        target = doc if evse_uid is None else find_evse(doc, evse_uid)
        return target if connector_id is None else find_connector(target, connector_id)
    except UnknownLocationObject:
        return None


_LEVELS = (Location, EVSE, Connector)


def message_merger(method: str, body: Any, parts: Sequence[str], key: ObjectKey, config: Any) -> writes.Merger:
    """One message to a Location (`parts` empty), its EVSE ([uid]) or its
    Connector ([uid, id]), judged and merged as the routes below do it: for a
    Hub that stores what it broadcasts (Module.message_merger)."""
    if len(parts) > 2:
        raise not_found(f"no such path below location {key.object_id!r}")
    evse_uid, connector_id = (*parts, None, None)[:2]
    ident = ("uid", evse_uid) if len(parts) == 1 else ("id", connector_id)
    if method == merge.PUT:
        try:
            obj = _LEVELS[len(parts)].from_wire(body)
        except ValidationError as exc:
            raise invalid(error_text(exc)) from None
        if parts:
            _same_id(ident[0], getattr(obj, ident[0]), ident[1])
        body = obj.to_wire()
    elif parts and ident[0] in body:
        _same_id(ident[0], body[ident[0]], ident[1])
    if method == merge.PATCH and len(parts) < 2:
        _whole(body, "connectors" if parts else "evses", Connector if parts else EVSE)
    limits = config.location_limits if config is not None else LocationLimits()
    return partial(_merge, method, body, evse_uid, connector_id, key, limits)


def _kept(before: merge.Held | None, body: dict[str, Any], evse_uid: str | None,
          connector_id: str | None) -> Outcome:
    target = _target(before.doc, evse_uid, connector_id) if before is not None else None
    if target is None or parse_datetime(body["last_updated"]) < parse_datetime(target["last_updated"]):
        return Outcome.OLDER_KEPT
    return Outcome.UNCHANGED


def _check(location: Location, cc: str, pid: str, location_id: str, limits: LocationLimits) -> None:
    common.check_identity(location, LOCATIONS, cc, pid, location_id)
    why = refusal(location, limits)
    if why:
        raise invalid(why)


def _same_id(field: str, value: object, expected: str) -> None:
    if not isinstance(value, str) or ci_key(value) != ci_key(expected):
        raise invalid(f"{field}: {value!r} in the body differs from {expected!r} in the URL")


def _whole(patch: dict[str, Any], field: str, model: type[EVSE] | type[Connector]) -> None:
    """The EVSEs of a Location PATCH, or the Connectors of an EVSE PATCH, are
    whole objects, each merged as a PUT of it; ones not listed stay."""
    if field not in patch:
        return
    items = patch[field]
    if not isinstance(items, list) or (model is Connector and not items):
        raise invalid(f"{field}: a PATCH lists whole {model.__name__} objects to add or replace"
                      + (" (an EVSE has at least one)" if model is Connector else ""))
    patch[field] = [common.validate_merged(model, item).to_wire() for item in items]


@router.put(RX + LOC)
async def rx_put_location(request: Request, country_code: str, party_id: str, location_id: str):
    auth = await _auth(request, country_code, party_id)
    location = await parse_body(request, Location)
    # Judged on its own, so before the transaction: its lock is held no longer than needed.
    _check(location, country_code, party_id, location_id, common.ctx_of(request).location_limits)
    return await _write(request, auth, country_code, party_id, location_id, merge.PUT, location.to_wire())


@router.put(RX + EVSE_PATH)
async def rx_put_evse(request: Request, country_code: str, party_id: str, location_id: str,
                      evse_uid: str):
    auth = await _auth(request, country_code, party_id)
    evse = await parse_body(request, EVSE)
    _same_id("uid", evse.uid, evse_uid)
    dup = duplicate_connector_ids(evse)
    if dup:
        raise invalid(dup)
    return await _write(request, auth, country_code, party_id, location_id, merge.PUT, evse.to_wire(), evse_uid)


@router.put(RX + CONN)
async def rx_put_connector(request: Request, country_code: str, party_id: str, location_id: str,
                           evse_uid: str, connector_id: str):
    auth = await _auth(request, country_code, party_id)
    connector = await parse_body(request, Connector)
    _same_id("id", connector.id, connector_id)
    # A Connector under an unknown EVSE: 404 (ocpi/ocpi#406).
    return await _write(request, auth, country_code, party_id, location_id, merge.PUT, connector.to_wire(),
                        evse_uid, connector_id)


@router.patch(RX + LOC)
async def rx_patch_location(request: Request, country_code: str, party_id: str, location_id: str):
    auth = await _auth(request, country_code, party_id)
    patch = await common.parse_patch(request)
    _whole(patch, "evses", EVSE)
    return await _write(request, auth, country_code, party_id, location_id, merge.PATCH, patch)


@router.patch(RX + EVSE_PATH)
async def rx_patch_evse(request: Request, country_code: str, party_id: str, location_id: str,
                        evse_uid: str):
    auth = await _auth(request, country_code, party_id)
    patch = await common.parse_patch(request)
    if "uid" in patch:
        _same_id("uid", patch["uid"], evse_uid)
    _whole(patch, "connectors", Connector)
    return await _write(request, auth, country_code, party_id, location_id, merge.PATCH, patch, evse_uid)


@router.patch(RX + CONN)
async def rx_patch_connector(request: Request, country_code: str, party_id: str, location_id: str,
                             evse_uid: str, connector_id: str):
    auth = await _auth(request, country_code, party_id)
    patch = await common.parse_patch(request)
    if "id" in patch:
        _same_id("id", patch["id"], connector_id)
    return await _write(request, auth, country_code, party_id, location_id, merge.PATCH, patch, evse_uid,
                        connector_id)
