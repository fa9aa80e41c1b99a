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


from fastapi import APIRouter, Request

from evroam.modules.locations import MODULE as LOCATIONS
from evroam.server import objects as common
from evroam.server.auth import authenticate_registered
from evroam.modules.locations.rules import child_json

router = APIRouter()

LOC = "/{location_id}"
EVSE_PATH = "/{location_id}/{evse_uid}"
CONN = "/{location_id}/{evse_uid}/{connector_id}"


# --- Sender -------------------------------------------------------------------------------


@router.get("")
async def get_locations(request: Request):
    return await common.sender_list(request, LOCATIONS)


@router.get(LOC)
async def get_location(request: Request, location_id: str):
    await authenticate_registered(request)
    data = await common.sender_get_one(request, LOCATIONS, location_id)
    return common.respond(request, data_json=data.encode())


@router.get(EVSE_PATH)
async def get_evse(request: Request, location_id: str, evse_uid: str):
    await authenticate_registered(request)
    data = await common.sender_get_one(request, LOCATIONS, location_id)
    return common.respond(request, data_json=child_json(data, evse_uid, None))


@router.get(CONN)
async def get_connector(request: Request, location_id: str, evse_uid: str, connector_id: str):
    await authenticate_registered(request)
    data = await common.sender_get_one(request, LOCATIONS, location_id)
    return common.respond(request, data_json=child_json(data, evse_uid, connector_id))
