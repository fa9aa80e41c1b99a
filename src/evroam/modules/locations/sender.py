"""Locations, Sender interface (the CPO): GET the list (paginated), one
Location, one EVSE or one Connector of ours, served from the stored
document.

Visibility: the Sender serves (and we push) Locations with `publish=false`
too. The flag says whether the *Receiver* may show the Location in an app
or on a website: only to owners of Tokens that match one
`publish_allowed_to` entry. The spec's uc3 example ("not published, but paid
guest usage possible") relies on the eMSP having the Location. A Location
that must not reach partners at all ("Private charging Locations … SHALL NOT
be published via OCPI") is simply never published by us.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request

from evroam.ocpi.base import dumps
from evroam.modules.locations import MODULE as LOCATIONS
from evroam.ocpi.status import not_found
from evroam.server import objects as common
from evroam.server.auth import authenticate_registered
from evroam.modules.locations.rules import (
    find_connector,
    find_evse,
)

router = APIRouter()

LOC = "/{location_id}"
EVSE_PATH = "/{location_id}/{evse_uid}"
CONN = "/{location_id}/{evse_uid}/{connector_id}"


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


@router.get("")
async def get_locations(request: Request):  # noqa: ANN201
    return await common.sender_list(request, LOCATIONS)


@router.get(LOC)
async def get_location(request: Request, location_id: str):  # noqa: ANN201
    await authenticate_registered(request)
    data = await common.sender_get_one(request, LOCATIONS, location_id)
    return common.respond(request, data_json=data.encode())


@router.get(EVSE_PATH)
async def get_evse(request: Request, location_id: str, evse_uid: str):  # noqa: ANN201
    await authenticate_registered(request)
    data = await common.sender_get_one(request, LOCATIONS, location_id)
    return common.respond(request, data_json=_child(data, evse_uid, None))


@router.get(CONN)
async def get_connector(request: Request, location_id: str, evse_uid: str, connector_id: str):  # noqa: ANN201
    await authenticate_registered(request)
    data = await common.sender_get_one(request, LOCATIONS, location_id)
    return common.respond(request, data_json=_child(data, evse_uid, connector_id))
