"""Tokens, Receiver interface (the CPO): GET, PUT and PATCH on
`{url}/{cc}/{pid}/{uid}[?type=]`. A token is identified by uid AND type; an
absent `type` means RFID. POST and DELETE do not exist: an eMSP invalidates
a token with valid=false.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from evroam.modules.tokens import MODULE as TOKENS
from evroam.ocpi.status import invalid
from evroam.modules.tokens.rules import token_type
from evroam.server import objects as common
from evroam.server import writes
from evroam.server.auth import authenticate_registered


router = APIRouter()


# --- Receiver (CPO) --------------------------------------------------------------------------


@router.get("/{country_code}/{party_id}/{token_uid}")
async def get_token(request: Request, country_code: str, party_id: str, token_uid: str):
    await authenticate_registered(request)  # before ?type= is judged: a stranger gets 401
    return await common.receiver_get(request, TOKENS, country_code, party_id, token_uid, token_type(request))


@router.put("/{country_code}/{party_id}/{token_uid}")
async def put_token(request: Request, country_code: str, party_id: str, token_uid: str):
    await authenticate_registered(request)  # before ?type= is judged: a stranger gets 401
    return await writes.receiver_put(request, TOKENS, country_code, party_id, token_uid, token_type(request))


def _keep_type(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    # The type is half of the token's identity (the URL's ?type=); a PATCH cannot move it.
    if "type" in patch and patch["type"] != current["type"]:
        raise invalid(f"type: {patch['type']!r} in the body differs from {current['type']!r} in the URL")
    return {**current, **patch}


@router.patch("/{country_code}/{party_id}/{token_uid}")
async def patch_token(request: Request, country_code: str, party_id: str, token_uid: str):
    await authenticate_registered(request)  # before ?type= is judged: a stranger gets 401
    return await writes.receiver_patch(request, TOKENS, country_code, party_id, token_uid, token_type(request),
                                       merge=_keep_type)
