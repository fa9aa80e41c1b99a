"""Admin routes that create or replace our own objects. Each change is
stored and queued for partners in one transaction (sync.publish.publish),
then the delivery worker is woken, so partners get it pushed.

PUT answers 201 when it creates and 200 when it replaces; the same document
again answers 200 "unchanged" and pushes nothing.
"""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from starlette.responses import Response

from evroam.admin import bad_request, conflict, node_of, not_found, ok, parse_object, unknown_place
from evroam.ocpi.base import OcpiModel, error_text
from evroam.ocpi.locations import Status
from evroam.ocpi.modules import CDRS, LOCATIONS, TARIFFS, TOKENS, ObjectModule
from evroam.ocpi.tokens import TokenType
from evroam.ocpi.types import DateTime, ci_key
from evroam.store import objects as repo
from evroam.sync.importer import CREATED, UNCHANGED, Refused, change_kind, check_own, own_keys
from evroam.store.locations import UnknownLocationObject, location_lock, refusal
from evroam.sync.locations import set_evse_status
from evroam.sync.publish import object_key, publish
from evroam.sync.sessions import CDR_PLACE, UnknownPlace, check_place

router = APIRouter()

_OBJECT_DOC = "The whole OCPI object (2.2.1) as JSON."

# Bodies are parsed by hand (400 naming the field, never 422), so their
# schemas are declared for the docs here; admin/app.py adds the components.
BODY_MODELS: list[type[OcpiModel]] = []


def body(model: type[OcpiModel]) -> dict:
    BODY_MODELS.append(model)
    return {"requestBody": {"required": True, "content": {"application/json": {
        "schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}


async def put_own(request: Request, module: ObjectModule, object_id: str, type_: str = "") -> Response:
    node = node_of(request)
    obj = await parse_object(request, module.model)
    value = getattr(obj, module.id_field)
    if ci_key(value) != ci_key(object_id):
        raise bad_request(f"{module.id_field}: {value!r} in the body differs from {object_id!r} in the URL")
    if module.typed and obj.type.value != type_:
        raise bad_request(f"type: {obj.type.value!r} in the body differs from {type_!r} in the URL")
    try:
        check_own(obj, module, own_keys(node.config.roles, module))
    except Refused as exc:
        raise bad_request(str(exc)) from None
    if module is LOCATIONS:
        why = refusal(obj, node.config.location_limits)
        if why:
            raise bad_request(why)
        # The same lock as EVSE/Connector changes, so a PUT never interleaves
        # with their read-modify-write of this document.
        async with location_lock(id(node.engine), object_id):
            kind = await _publish(node, module, obj)
    else:
        kind = await _publish(node, module, obj)
    return ok(data_json=obj.to_json_bytes(), http_status=201 if kind == CREATED else 200,
              message="unchanged" if kind == UNCHANGED else None)


async def _publish(node, module: ObjectModule, obj: OcpiModel) -> str:  # noqa: ANN001
    data = obj.to_json_bytes().decode()
    async with node.engine.begin() as conn:
        if module is CDRS:
            where = obj.cdr_location
            try:
                # "#NA" EVSE and connector: a CDR for a reservation that never became a session.
                await check_place(conn, obj.country_code, obj.party_id, where.id, where.evse_uid,
                                  where.connector_id, reserved=True, fields=CDR_PLACE, in_service=False)
            except UnknownPlace as exc:
                raise unknown_place(exc) from None
        stored = await repo.get(conn, object_key(module, obj), for_update=True)
        try:
            kind = change_kind(module, obj, data, stored)
        except Refused as exc:
            raise conflict(str(exc)) from None
        if kind != UNCHANGED:
            await publish(conn, module, obj)
    if kind != UNCHANGED and node.delivery is not None:
        node.delivery.notify()
    return kind


@router.put("/locations/{location_id}", status_code=201, summary="Create or replace one of our Locations",
            description=_OBJECT_DOC, openapi_extra=body(LOCATIONS.model))
async def put_location(request: Request, location_id: str) -> Response:
    return await put_own(request, LOCATIONS, location_id)


class EvseStatusUpdate(OcpiModel):
    status: Status
    last_updated: DateTime | None = None  # default: now


@router.put("/locations/{location_id}/evses/{evse_uid}/status", summary="Set an EVSE's status",
            description="Body: {\"status\": \"CHARGING\", \"last_updated\"?: DateTime}. Partners get a PATCH "
                        "of just that EVSE.", openapi_extra=body(EvseStatusUpdate))
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
            description=_OBJECT_DOC, openapi_extra=body(TARIFFS.model))
async def put_tariff(request: Request, tariff_id: str) -> Response:
    return await put_own(request, TARIFFS, tariff_id)


@router.put("/tokens/{token_uid}", status_code=201, summary="Create or replace one of our Tokens",
            description=_OBJECT_DOC + " Tokens are identified by uid and type.", openapi_extra=body(TOKENS.model))
async def put_token(request: Request, token_uid: str,
                    type: str = Query("RFID", description="Token type (default RFID, as in OCPI).")) -> Response:  # noqa: A002
    try:
        TokenType(type)
    except ValueError:
        raise bad_request(f"type: {type!r} is not one of {', '.join(t.value for t in TokenType)}") from None
    return await put_own(request, TOKENS, token_uid, type)


@router.put("/cdrs/{cdr_id}", status_code=201, summary="Publish one of our CDRs",
            description=_OBJECT_DOC + " Its cdr_location names one of our Locations, EVSEs and Connectors "
                                      "(or \"#NA\" EVSE and connector: a reservation), else 400 with "
                                      "status_code 2003. A CDR never changes once stored: a different one "
                                      "under the same id answers 409 (issue a credit CDR instead).",
            openapi_extra=body(CDRS.model))
async def put_cdr(request: Request, cdr_id: str) -> Response:
    return await put_own(request, CDRS, cdr_id)
