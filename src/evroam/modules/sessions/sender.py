"""Sessions, Sender interface (the CPO): GET the list (date_from required),
showing a partner only the sessions of its own tokens, and PUT
`/{session_id}/charging_preferences`.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncConnection

from evroam.modules.events import SessionEvent
from evroam.ocpi.locations import Capability
from evroam.modules.sessions import MODULE as SESSIONS
from evroam.ocpi.sessions import ChargingPreferences, ChargingPreferencesResponse, Session, SessionStatus
from evroam.ocpi.status import OcpiError, StatusCode, not_found
from evroam.ocpi.types import ci_key
from evroam.server import objects as common
from evroam.server.objects import caller_ref_keys, own_list
from evroam.server.auth import authenticate_registered
from evroam.server.body import parse_body
from evroam.store import objects as repo
from evroam.store.objects import ObjectKey
from evroam.store.parties import Party
from evroam.store.tables import OURS
from evroam.store.objects import ref_key

log = structlog.get_logger(__name__)

router = APIRouter()


# Without a hook nothing acts on preferences, whatever the profile: the
# demand cannot be fulfilled (NOT_POSSIBLE), rather than "this profile is not
# supported" (PROFILE_TYPE_NOT_SUPPORTED), which would suggest another
# profile might work.
DEFAULT_PREFERENCES_RESPONSE = ChargingPreferencesResponse.NOT_POSSIBLE
FINISHED = frozenset({SessionStatus.COMPLETED, SessionStatus.INVALID})


# --- Sender (CPO) -----------------------------------------------------------------------


@router.get("")
async def get_sessions(request: Request):
    return await own_list(request, SESSIONS, date_from_required=True)


@router.put("/{session_id}/charging_preferences")
async def put_charging_preferences(request: Request, session_id: str):
    auth = await authenticate_registered(request)
    ctx = common.ctx_of(request)
    preferences = await parse_body(request, ChargingPreferences)
    async with ctx.engine.connect() as conn:
        stored = await repo.find_any_owner(conn, SESSIONS.id, session_id, OURS)
        session = Session.from_wire(stored.data) if stored is not None else None
        # Another eMSP's session is as unknown to this caller as a missing one.
        if session is None or ref_key(SESSIONS, session) not in caller_ref_keys(auth.party, request):
            raise not_found(f"unknown session {session_id!r}")
        capable = await evse_capable(conn, session)
    if not capable:
        # mod_sessions, ChargingPreferencesResponse: HTTP 404 with 2001.
        raise OcpiError(StatusCode.INVALID_PARAMETERS,
                        f"EVSE {session.evse_uid!r} of location {session.location_id!r} is not "
                        f"{Capability.CHARGING_PREFERENCES_CAPABLE.value}", http_status=404)
    if session.status in FINISHED:
        answer = ChargingPreferencesResponse.NOT_POSSIBLE
    else:
        answer = await _ask_hook(ctx.hooks, session, preferences, auth.party)
    return common.respond(request, data=answer.value)


async def evse_capable(conn: AsyncConnection, session: Session) -> bool:
    """Whether the session's EVSE, in our own published Location, lists
    CHARGING_PREFERENCES_CAPABLE. The CPO owns the Location, so this is a
    local lookup; an EVSE we have not published cannot have advertised the
    capability, so it counts as not capable."""
    stored = await repo.get(conn, ObjectKey("locations", OURS, session.country_code, session.party_id,
                                            session.location_id))
    if stored is None:
        return False
    uid = ci_key(session.evse_uid)
    for evse in json.loads(stored.data).get("evses") or ():
        if ci_key(evse.get("uid", "")) == uid:
            return Capability.CHARGING_PREFERENCES_CAPABLE.value in (evse.get("capabilities") or ())
    return False


async def _ask_hook(hooks: Any, session: Session, preferences: ChargingPreferences,
                    party: Party) -> ChargingPreferencesResponse:
    if hooks.get(SessionEvent.CHARGING_PREFERENCES) is None:
        return DEFAULT_PREFERENCES_RESPONSE
    answer = await hooks.fire(SessionEvent.CHARGING_PREFERENCES, session, preferences, party)
    try:
        return ChargingPreferencesResponse(answer)
    except ValueError:
        # A failed or confused hook must not answer something the spec lacks.
        log.warning("sessions.preferences_hook_answer", answer=repr(answer))
        return DEFAULT_PREFERENCES_RESPONSE
