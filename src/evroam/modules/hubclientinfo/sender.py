"""HubClientInfo Sender (the Hub): the paginated list of ClientInfo objects,
for a connected party that is unsure of its cache (mod_hub_client_info,
"Hub Interface")."""

from __future__ import annotations

from fastapi import APIRouter, Request

from evroam.modules.hubclientinfo import MODULE
from evroam.server import objects as common

router = APIRouter()


@router.get("")
async def get_client_infos(request: Request):
    return await common.sender_list(request, MODULE)
