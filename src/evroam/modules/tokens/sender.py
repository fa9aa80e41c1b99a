"""Tokens, Sender interface (the eMSP): the token list (paginated) and
real-time authorization, `POST {url}/{token_uid}/authorize[?type=]`. The
eMSP's business decision comes from a hook:

    @node.on(Authorize.TOKEN)
    async def decide(token: Token, location: LocationReferences | None, party: Party):
        if location is None:
            raise LocationRequired()             # answered as 2002
        return AllowedType.NO_CREDIT             # or a whole AuthorizationInfo

Without a hook a valid token is ALLOWED and any other BLOCKED.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import sqlalchemy as sa
import structlog
from fastapi import APIRouter, Request

from evroam.modules.events import Authorize
from evroam.ocpi.base import dumps
from evroam.modules.tokens import MODULE as TOKENS
from evroam.ocpi.status import OcpiError, StatusCode
from evroam.ocpi.tokens import AllowedType, AuthorizationInfo, LocationReferences, Token
from evroam.ocpi.types import ci_key
from evroam.modules.tokens.rules import token_type
from evroam.server import objects as common
from evroam.server import routing
from evroam.server.auth import authenticate_registered
from evroam.server.body import parse_body
from evroam.store.tables import OURS, objects

log = structlog.get_logger(__name__)

router = APIRouter()


class LocationRequired(Exception):
    """Raised by an Authorize hook when it cannot decide without a location (2002)."""

    def __init__(self, message: str = "a LocationReferences body is needed to authorize this token") -> None:
        super().__init__(message)
        self.message = message


# --- Sender (eMSP) --------------------------------------------------------------------------


@router.get("")
async def get_tokens(request: Request):
    return await common.sender_list(request, TOKENS)


async def _find_ours(request: Request, uid: str, type_: str) -> str | None:
    """Our token by uid + type. The URL has no cc/pid; if we issue tokens under
    several roles and the uid is taken in more than one, the OCPI-to headers
    (the role the caller addressed) pick, else the oldest wins."""
    async with common.ctx_of(request).engine.connect() as conn:
        rows = (await conn.execute(
            sa.select(objects.c.cc_key, objects.c.pid_key, objects.c.data)
            .where(objects.c.module == TOKENS.id, objects.c.owner_id == OURS,
                   objects.c.oid_key == ci_key(uid), objects.c.type_key == type_)
            .order_by(objects.c.id))).all()
    if len(rows) > 1:
        to = routing.claimed(request).to_key
        for row in rows:
            if (row.cc_key, row.pid_key) == to:
                return row.data
    return rows[0].data if rows else None


async def _location_refs(request: Request) -> LocationReferences | None:
    raw = await request.body()
    if not raw.strip() or raw.strip() == b"null":
        return None
    return await parse_body(request, LocationReferences)


def _authorization_json(allowed: AllowedType, token_doc: str, location: LocationReferences | None,
                        reference: str | None) -> bytes:
    """AuthorizationInfo with the stored token document spliced in, unparsed."""
    rest: dict[str, Any] = {}
    if location is not None:
        rest["location"] = location
    if reference is not None:
        rest["authorization_reference"] = reference
    tail = dumps(rest)[1:]  # '}' or '"location":…}'
    return (b'{"allowed":' + dumps(allowed.value) + b',"token":' + token_doc.encode()
            + (b"," + tail if len(tail) > 1 else tail))


@router.post("/{token_uid}/authorize")
async def authorize(request: Request, token_uid: str):
    auth = await authenticate_registered(request)
    type_ = token_type(request)
    location = await _location_refs(request)
    doc = await _find_ours(request, token_uid, type_)
    if doc is None:
        # mod_tokens: unknown token → HTTP 404, 2004 and no `data` field at all.
        raise OcpiError(StatusCode.UNKNOWN_TOKEN, f"unknown token {token_uid} ({type_})", http_status=404)
    hooks = common.ctx_of(request).hooks
    hook = hooks.get(Authorize.TOKEN) or hooks.get(Authorize)
    if hook is None:
        allowed = AllowedType.ALLOWED if json.loads(doc)["valid"] else AllowedType.BLOCKED
        data = _authorization_json(allowed, doc, location if allowed == AllowedType.ALLOWED else None,
                                   str(uuid.uuid4()))
        return common.respond(request, data_json=data)
    token = Token.from_wire(doc)
    try:
        answer = await hook(token, location, auth.party)
    except LocationRequired as exc:
        raise OcpiError(StatusCode.NOT_ENOUGH_INFORMATION, exc.message) from None
    if isinstance(answer, AllowedType):
        data = _authorization_json(answer, doc, location if answer == AllowedType.ALLOWED else None,
                                   str(uuid.uuid4()))
        return common.respond(request, data_json=data)
    if isinstance(answer, AuthorizationInfo):
        # `location` only echoes a location that was asked for and where charging is allowed.
        if answer.allowed != AllowedType.ALLOWED or location is None:
            answer = answer.model_copy(update={"location": None})
        return common.respond(request, data_json=answer.to_json_bytes())
    # Our bug, not the client's: 3000. The returned type is the whole story, so no traceback.
    log.error("authorize.hook_bad_return", returned=type(answer).__name__)
    raise OcpiError(StatusCode.SERVER_ERROR, "authorization hook failed", http_status=500)
