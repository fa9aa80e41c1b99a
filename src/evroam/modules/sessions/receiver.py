"""Sessions module (mod_sessions.asciidoc): Sender (CPO) and Receiver (eMSP) routers.

Sender: GET list (date_from required) showing a partner only the sessions of
its own tokens, and PUT `/{session_id}/charging_preferences`.
Receiver: GET, PUT and PATCH on `/{country_code}/{party_id}/{session_id}`; a
PUT replaces the charging periods, a PATCH appends them.
"""

from __future__ import annotations

import json

import structlog
from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from evroam.modules.sessions import MODULE as SESSIONS
from evroam.ocpi.sessions import Session
from evroam.ocpi.status import not_found
from evroam.ocpi.types import ci_key, parse_datetime
from evroam.modules.sessions.periods import append_periods
from evroam.server import objects as common
from evroam.server.auth import authenticate_registered
from evroam.server.body import parse_body
from evroam.modules.events import Received
from evroam.server.responses import ocpi_response
from evroam.store import objects as repo
from evroam.store.objects import ObjectKey
from evroam.store.objects import ref_key

log = structlog.get_logger(__name__)

router = APIRouter()


# --- Receiver (eMSP) --------------------------------------------------------------------


@router.get("/{country_code}/{party_id}/{session_id}")
async def get_session(request: Request, country_code: str, party_id: str, session_id: str):  # noqa: ANN201
    return await common.receiver_get(request, SESSIONS, country_code, party_id, session_id)


@router.put("/{country_code}/{party_id}/{session_id}")
async def put_session(request: Request, country_code: str, party_id: str, session_id: str):  # noqa: ANN201
    auth = await authenticate_registered(request)
    common.require_own_keys(auth.party, country_code, party_id)
    session = await parse_body(request, Session)
    common.check_identity(session, SESSIONS, country_code, party_id, session_id)
    key = ObjectKey(SESSIONS.id, auth.party.id, country_code, party_id, session_id)
    data = session.to_json_bytes().decode()
    ctx = common.ctx_of(request)
    async with ctx.engine.begin() as conn:
        stored = await repo.get(conn, key, for_update=True)
        # At-least-once delivery: the same version again, or an older one, is a no-op.
        if stored is not None and (stored.last_updated > session.last_updated or stored.data == data):
            return _kept(request, same=stored.data == data)
        # The whole Session replaces the stored one: periods it leaves out are gone.
        _, created = await repo.save(conn, key, stored, data, session.last_updated,
                                     ref_key=ref_key(SESSIONS, session))
        known = session.evse_uid == "#NA" or not created or await knows_evse(conn, auth.party.id, session)
    if not known:
        # Accepted anyway: the Session is the CPO's truth; a pull of locations heals the gap.
        log.info("sessions.unknown_evse", party=auth.party.name, location=session.location_id,
                 evse=session.evse_uid)
    await ctx.hooks.fire(Received.SESSION, session, auth.party)
    return common.respond(request, http_status=201 if created else 200)


@router.patch("/{country_code}/{party_id}/{session_id}")
async def patch_session(request: Request, country_code: str, party_id: str, session_id: str):  # noqa: ANN201
    auth = await authenticate_registered(request)
    common.require_own_keys(auth.party, country_code, party_id)
    patch = await common.parse_patch(request)
    key = ObjectKey(SESSIONS.id, auth.party.id, country_code, party_id, session_id)
    ctx = common.ctx_of(request)
    async with ctx.engine.begin() as conn:
        stored = await repo.get(conn, key, for_update=True)
        if stored is None:
            # A PATCH never creates: the client is to GET, then PUT.
            raise not_found(f"unknown session {country_code}/{party_id}/{session_id}: PUT it first")
        if parse_datetime(patch["last_updated"]) < stored.last_updated:
            return _kept(request, same=False)
        session = common.validate_merged(Session, append_periods(json.loads(stored.data), patch))
        common.check_identity(session, SESSIONS, country_code, party_id, session_id)
        await repo.save(conn, key, stored, session.to_json_bytes().decode(), session.last_updated,
                        ref_key=ref_key(SESSIONS, session))
    await ctx.hooks.fire(Received.SESSION, session, auth.party)
    return common.respond(request)


def _kept(request: Request, *, same: bool) -> Response:
    message = common.SAME if same else common.OLDER
    return ocpi_response(status_message=message)


async def knows_evse(conn: AsyncConnection, owner_id: int, session: Session) -> bool:
    """Whether we hold (from that CPO) the Location and EVSE the session names."""
    stored = await repo.get(conn, ObjectKey("locations", owner_id, session.country_code, session.party_id,
                                            session.location_id))
    if stored is None:
        return False
    uid = ci_key(session.evse_uid)
    return any(ci_key(e.get("uid", "")) == uid for e in json.loads(stored.data).get("evses") or ())
