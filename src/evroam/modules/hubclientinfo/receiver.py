"""HubClientInfo Receiver (a party connected to a Hub): GET and PUT of the
ClientInfo of one party, at {country_code}/{party_id}. There is no PATCH
and no DELETE: a Hub invalidates with status SUSPENDED.

Unlike the other modules, the object's country_code/party_id are another
party's (the one whose status it reports), so the caller's right to write is
its Hub role, not the object's keys (rules.require_hub, the module's
`may_write`).
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from evroam.modules.hubclientinfo import MODULE
from evroam.server import objects as common
from evroam.server import writes

router = APIRouter()

PATH = "/{country_code}/{party_id}"


@router.get(PATH)
async def get_client_info(request: Request, country_code: str, party_id: str):
    return await common.receiver_get(request, MODULE, country_code, party_id, party_id)


@router.put(PATH)
async def put_client_info(request: Request, country_code: str, party_id: str):
    return await writes.receiver_put(request, MODULE, country_code, party_id, party_id)
