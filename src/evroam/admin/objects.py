"""Admin routes for our own objects. Each change goes the one way all our
changes go (sync/own.py: the owner rules, then stored and queued for partners
in one transaction), then the delivery worker is woken, so partners get it pushed.

PUT answers 201 when it creates and 200 when it replaces; the same document
again answers 200 "unchanged" and pushes nothing. Every PUT has its GET (404
when absent). An object is found by its id; `country_code` and `party_id`
say which role's it is when several of our roles use the same id.
Tariffs can be deleted (partners get a DELETE); tokens of other eMSPs can be
authorized in real time, as a charge point would ask.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from fastapi import APIRouter, Depends, Query, Request
from pydantic import ValidationError
from starlette.responses import Response

from evroam.admin import (answers, bad_request, conflict, node_of, not_found, ok, parse_object, refused,
                          unknown_place)
from evroam.ocpi.base import OcpiModel, error_text
from evroam.ocpi.locations import Status
from evroam.modules.cdrs import MODULE as CDRS
from evroam.modules.locations import MODULE as LOCATIONS
from evroam.modules.sessions import MODULE as SESSIONS
from evroam.modules.tariffs import MODULE as TARIFFS
from evroam.modules.tokens import MODULE as TOKENS
from evroam.module import Module
from evroam.ocpi.tokens import AllowedType, LocationReferences, TokenType
from evroam.ocpi.types import DateTime, ci_key
from evroam.store import objects as repo
from evroam.store.objects import ObjectKey, Stored
from evroam.store.tables import OURS
from evroam.sync import own
from evroam.sync.own import CREATED, UNCHANGED, Ours, Refused
from evroam.modules.locations.rules import UnknownLocationObject, tariff_users
from evroam.modules.locations.owner import set_evse_status
from evroam.modules.sessions.owner import CDR_PLACE, UnknownPlace, check_place

router = APIRouter()

_OBJECT_DOC = "The whole OCPI object (2.2.1) as JSON."

# Bodies are parsed by hand (400 naming the field, never 422), so their
# schemas are declared for the docs here; admin/app.py adds the components.
BODY_MODELS: list[type[OcpiModel]] = []
_PUT_ANSWERS = answers(200, 400, 409, ok="Replaced, or the same document again (\"unchanged\": nothing is pushed).")


def body(model: type[OcpiModel], *, required: bool = True) -> dict:
    BODY_MODELS.append(model)
    return {"requestBody": {"required": required, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}


def _token_type(type_: str) -> str:
    try:
        return TokenType(type_).value
    except ValueError:
        raise bad_request(f"type: {type_!r} is not one of {', '.join(t.value for t in TokenType)}") from None


_TYPE = Query("RFID", description="Token type (default RFID, as in OCPI).")


async def put_own(request: Request, module: Module, object_id: str, type_: str = "") -> Response:
    node = node_of(request)
    obj = await parse_object(request, module.model)
    value = getattr(obj, module.id_field)
    if ci_key(value) != ci_key(object_id):
        raise bad_request(f"{module.id_field}: {value!r} in the body differs from {object_id!r} in the URL")
    if module.typed and obj.type.value != type_:
        raise bad_request(f"type: {obj.type.value!r} in the body differs from {type_!r} in the URL")
    ours = Ours.of(node.config)
    try:
        own.check(obj, module, ours)  # before the CDR's place: a foreign object is refused as such
        kind = await _publish(node, module, obj, ours)
    except Refused as exc:
        raise refused(exc) from None
    return ok(data_json=obj.to_json_bytes(), http_status=201 if kind == CREATED else 200,
              message="unchanged" if kind == UNCHANGED else None)


async def _publish(node, module: Module, obj: OcpiModel, ours: Ours) -> str:
    async with own.changing(node.engine, module, getattr(obj, module.id_field)) as conn:
        if module is CDRS:
            where = obj.cdr_location
            try:
                # "#NA" EVSE and connector: a CDR for a reservation that never became a session.
                await check_place(conn, obj.country_code, obj.party_id, where.id, where.evse_uid,
                                  where.connector_id, reserved=True, fields=CDR_PLACE, in_service=False)
            except UnknownPlace as exc:
                raise unknown_place(exc) from None
        kind = await own.write(conn, module, obj, ours)
    if kind != UNCHANGED and node.delivery is not None:
        node.delivery.notify()
    return kind


@router.put("/locations/{location_id}", status_code=201, summary="Create or replace one of our Locations",
            description=_OBJECT_DOC, openapi_extra=body(LOCATIONS.model), responses=_PUT_ANSWERS)
async def put_location(request: Request, location_id: str) -> Response:
    return await put_own(request, LOCATIONS, location_id)


class EvseStatusUpdate(OcpiModel):
    status: Status
    last_updated: DateTime | None = None  # default: now


@router.put("/locations/{location_id}/evses/{evse_uid}/status", summary="Set an EVSE's status",
            description="Body: {\"status\": \"CHARGING\", \"last_updated\"?: DateTime}. Partners get a PATCH "
                        "of just that EVSE.", openapi_extra=body(EvseStatusUpdate), responses=answers(400, 404))
async def put_evse_status(request: Request, location_id: str, evse_uid: str) -> Response:
    node = node_of(request)
    update = await parse_object(request, EvseStatusUpdate)
    try:
        location = await set_evse_status(node, location_id, evse_uid, update.status, update.last_updated)
    except UnknownLocationObject as exc:
        raise not_found(str(exc)) from None
    except ValidationError as exc:
        raise bad_request(error_text(exc)) from None
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    evse = next(e for e in location.evses or () if ci_key(e.uid) == ci_key(evse_uid))
    return ok(data_json=evse.to_json_bytes())


@router.put("/tariffs/{tariff_id}", status_code=201, summary="Create or replace one of our Tariffs",
            description=_OBJECT_DOC, openapi_extra=body(TARIFFS.model), responses=_PUT_ANSWERS)
async def put_tariff(request: Request, tariff_id: str) -> Response:
    return await put_own(request, TARIFFS, tariff_id)


@router.put("/tokens/{token_uid}", status_code=201, summary="Create or replace one of our Tokens",
            description=_OBJECT_DOC + " Tokens are identified by uid and type.", openapi_extra=body(TOKENS.model),
            responses=_PUT_ANSWERS)
async def put_token(request: Request, token_uid: str, type: str = _TYPE) -> Response:
    return await put_own(request, TOKENS, token_uid, _token_type(type))


@router.put("/cdrs/{cdr_id}", status_code=201, summary="Publish one of our CDRs",
            description=_OBJECT_DOC + " Its cdr_location names one of our Locations, EVSEs and Connectors "
                                      "(or \"#NA\" EVSE and connector: a reservation), else 400 with "
                                      "status_code 2003. A CDR never changes once stored: a different one "
                                      "under the same id answers 409 (issue a credit CDR instead).",
            openapi_extra=body(CDRS.model), responses=_PUT_ANSWERS)
async def put_cdr(request: Request, cdr_id: str) -> Response:
    return await put_own(request, CDRS, cdr_id)


# --- reading our objects back, deleting tariffs ---------------------------------------------


@dataclass(frozen=True, slots=True)
class Whose:
    country_code: str | None = None
    party_id: str | None = None


def whose(country_code: str | None = Query(None, description="Which of our roles: needed only when several "
                                                             "of them use this id."),
          party_id: str | None = Query(None, description="Which of our roles (with country_code).")) -> Whose:
    if bool(country_code) != bool(party_id):
        # Half a role would silently match several of ours: say so instead.
        raise bad_request("give both country_code and party_id, or neither")
    return Whose(country_code, party_id)


async def our_object(request: Request, module: Module, object_id: str, who: Whose,
                     type_: str = "") -> Stored:
    """One of our live objects by id: 404 when absent (or deleted), 400 when
    the id is used under several of our roles and `who` does not say which."""
    async with node_of(request).engine.connect() as conn:
        found = await repo.find_ours(conn, module.id, object_id, type_, who.country_code, who.party_id)
    what = f"{module.id[:-1]} {object_id!r}" + (f" of type {type_}" if type_ else "")
    if not found:
        raise not_found(f"no {what} of ours")
    if len(found) > 1:
        raise bad_request(f"{what} exists under several of our roles: say which with country_code and party_id")
    return found[0]


def object_response(stored: Stored) -> Response:
    return ok(data_json=stored.data.encode())


def _get_route(module: Module, what: str) -> None:
    async def get_one(request: Request, object_id: str, who: Whose = Depends(whose)) -> Response:
        return object_response(await our_object(request, module, object_id, who))

    get_one.__name__ = f"get_{module.id[:-1]}"
    router.add_api_route(f"/{module.id}/{{object_id}}", get_one, methods=["GET"], summary=f"One of our {what}",
                         responses=answers(400, 404))


for _module, _what in ((LOCATIONS, "Locations"), (TARIFFS, "Tariffs"), (SESSIONS, "Sessions"), (CDRS, "CDRs")):
    _get_route(_module, _what)


async def _evse(request: Request, location_id: str, evse_uid: str, who: Whose) -> dict:
    doc = json.loads((await our_object(request, LOCATIONS, location_id, who)).data)
    for evse in doc.get("evses") or ():
        if ci_key(evse["uid"]) == ci_key(evse_uid):
            return evse
    raise not_found(f"location {location_id!r} has no EVSE {evse_uid!r}")


@router.get("/locations/{location_id}/evses/{evse_uid}", summary="One EVSE of one of our Locations",
            responses=answers(400, 404))
async def get_evse(request: Request, location_id: str, evse_uid: str, who: Whose = Depends(whose)) -> Response:
    return ok(await _evse(request, location_id, evse_uid, who))


@router.get("/locations/{location_id}/evses/{evse_uid}/status", summary="An EVSE's status",
            description="What the PUT of the same path sets: {\"status\", \"last_updated\"}.",
            responses=answers(400, 404))
async def get_evse_status(request: Request, location_id: str, evse_uid: str,
                          who: Whose = Depends(whose)) -> Response:
    evse = await _evse(request, location_id, evse_uid, who)
    return ok({"status": evse["status"], "last_updated": evse["last_updated"]})


@router.delete("/tariffs/{tariff_id}", summary="Delete one of our Tariffs",
               description="Partners are sent a DELETE (through the outbox, after any earlier change of it), and "
                           "our Tariffs list no longer shows it. Refused (409) while a connector of our Locations "
                           "lists it in tariff_ids, as mod_tariffs recommends. A PUT publishes it again.",
               responses=answers(400, 404, 409))
async def delete_tariff(request: Request, tariff_id: str, who: Whose = Depends(whose)) -> Response:
    node = node_of(request)
    doc = json.loads((await our_object(request, TARIFFS, tariff_id, who)).data)
    key = ObjectKey(TARIFFS.id, OURS, doc["country_code"], doc["party_id"], doc["id"])
    async with own.changing(node.engine, TARIFFS, key.object_id) as conn:
        users = await tariff_users(conn, key.country_code, key.party_id, key.object_id)
        if users:
            raise conflict(f"tariff {key.object_id!r} is still listed in tariff_ids of connector(s) "
                           f"{', '.join(users[:10])}: take it out of those Locations first")
        if not await own.delete(conn, TARIFFS, key):
            raise not_found(f"no tariff {tariff_id!r} of ours")
    if node.delivery is not None:
        node.delivery.notify()
    return ok(message="deleted")


@router.get("/tokens/{token_uid}", summary="One of our Tokens", responses=answers(400, 404))
async def get_token(request: Request, token_uid: str, type: str = _TYPE,
                    who: Whose = Depends(whose)) -> Response:
    return object_response(await our_object(request, TOKENS, token_uid, who, _token_type(type)))


@router.post("/tokens/{token_uid}/authorize", summary="May this token charge? (real-time authorization, CPO)",
             description="The decision a charge point needs, taken as node.authorize takes it: by the token's "
                         "whitelist, from the tokens eMSPs sent us or by asking the eMSP. Body (optional): "
                         "LocationReferences {location_id, evse_uids?}. Answers an AuthorizationInfo (`allowed` "
                         "is ALLOWED only when charging may start; a cache decision on an invalid token is "
                         "BLOCKED, an unknown token or no answer NOT_ALLOWED; `token` when known) with "
                         "`source` (cache, realtime, cache-offline-fallback), `reason` and `partner`.",
             openapi_extra=body(LocationReferences, required=False), responses=answers(400))
async def authorize_token(request: Request, token_uid: str, type: str = _TYPE) -> Response:
    type_ = _token_type(type)
    raw = (await request.body()).strip()
    where = None if raw in (b"", b"null") else await parse_object(request, LocationReferences)
    decision = await node_of(request).authorize(token_uid, type_, where.location_id if where else None,
                                                where.evse_uids if where else None)
    if decision.info is not None:
        doc = decision.info.to_wire()
    else:
        allowed = (AllowedType.ALLOWED if decision.allowed else AllowedType.BLOCKED
                   if decision.token is not None and not decision.token.valid else AllowedType.NOT_ALLOWED)
        doc = {"allowed": allowed.value}
        if decision.token is not None:
            doc["token"] = decision.token.to_wire()
    doc.update(source=decision.source, reason=decision.reason)
    if decision.party:
        doc["partner"] = decision.party
    return ok(doc)
