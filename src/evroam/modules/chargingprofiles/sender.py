"""ChargingProfiles, Sender interface (the eMSP/SCSP): POST
/{request_type}/{uid}, the response_url of a request we sent (sending:
client.py), and PUT /{session_id}, the CPO's update of a session's
ActiveChargingProfile, kept here (`store_active_profile`, `active_profile`).

Notifications: `ChargingProfileEvent.RESULT` (tracked, party) when a result
arrives; `ChargingProfileEvent.ACTIVE_PROFILE` (session_id,
ActiveChargingProfile, party) when the CPO PUTs one.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from evroam.modules.chargingprofiles import MODULE
from evroam.modules.chargingprofiles.owner import PROFILE_RESULT_MODELS, ProfileRequest
from evroam.modules.chargingprofiles.receiver import session_params
from evroam.modules.events import ChargingProfileEvent
from evroam.ocpi.chargingprofiles import ActiveChargingProfile
from evroam.ocpi.status import not_found
from evroam.ocpi.types import ci_key
from evroam.server import routing
from evroam.server.auth import authenticate_registered
from evroam.server.body import parse_body
from evroam.server.objects import OLDER, ctx_of, respond
from evroam.server.responses import ocpi_response
from evroam.store import objects
from evroam.store.objects import ObjectKey
from evroam.store.parties import Party
from evroam.sync.tracker import expect_tracked, store_result

router = APIRouter()

# Where the eMSP keeps the ActiveChargingProfiles a CPO PUTs (objects table).
ACTIVE_PROFILES = "activechargingprofiles"


@router.post("/{request_type}/{uid}")
async def post_result(request: Request, request_type: str, uid: str):
    """The response_url of a request we sent: Active/ChargingProfile/ClearProfile result."""
    auth = await authenticate_registered(request)
    engine = ctx_of(request).engine
    await expect_tracked(engine, uid, MODULE.id, request_type, auth.party)
    result = await parse_body(request, PROFILE_RESULT_MODELS[ProfileRequest(request_type)])
    tracked = await store_result(engine, uid, result)
    await ctx_of(request).hooks.fire(ChargingProfileEvent.RESULT, tracked, auth.party)
    return respond(request)


@router.put("/{session_id}")
async def put_active_profile(request: Request, session_id: str):
    """The CPO's update of a session's ActiveChargingProfile; answered without data."""
    auth = await authenticate_registered(request)
    p = session_params(request, session_id, need_url=False)
    profile = await parse_body(request, ActiveChargingProfile)
    # The session's CPO, if the request names it believably (server/routing.py).
    who = routing.honoured_from(auth.party, routing.claimed(request).from_key)
    created = await store_active_profile(ctx_of(request).engine, auth.party, who, p.session_id, profile)
    if created is None:
        # A profile calculated before the one we hold arrived late: success, no change, no hook.
        return ocpi_response(status_message=OLDER)
    await ctx_of(request).hooks.fire(ChargingProfileEvent.ACTIVE_PROFILE, p.session_id, profile, auth.party)
    return respond(request, http_status=201 if created else 200)


async def store_active_profile(engine: AsyncEngine, party: Party, who: tuple[str, str] | None, session_id: str,
                               profile: ActiveChargingProfile) -> bool | None:
    """eMSP/SCSP: keep the latest ActiveChargingProfile a CPO PUT for a
    session; True when it is the first for that session, None when the one
    stored was calculated later (`start_date_time`, "Date and time at which
    the Charge Point has calculated this ActiveChargingProfile", is its
    version) and is kept.

    The session must be one this partner sent us, and under `who` when the
    request named the session's CPO (a believed OCPI-from): 404 otherwise,
    writing nothing. The profile is kept under the session's own
    country_code/party_id, never under a value taken from a header."""
    async with engine.begin() as conn:
        session = await objects.find_any_owner(conn, "sessions", session_id, party.id)
        doc = json.loads(session.data) if session is not None else None
        if doc is None or (who is not None and (ci_key(doc["country_code"]), ci_key(doc["party_id"]))
                           != (ci_key(who[0]), ci_key(who[1]))):
            raise not_found(f"unknown session {session_id!r}")
        key = ObjectKey(ACTIVE_PROFILES, party.id, doc["country_code"], doc["party_id"], session_id)
        stored = await objects.get(conn, key, for_update=True)
        if stored is not None and stored.last_updated > profile.start_date_time:
            return None
        _, created = await objects.save(conn, key, stored, profile.to_json_bytes().decode(),
                                        profile.start_date_time)
    return created


async def active_profile(engine: AsyncEngine, party_id: int, session_id: str) -> ActiveChargingProfile | None:
    async with engine.connect() as conn:
        stored = await objects.find_any_owner(conn, ACTIVE_PROFILES, session_id, party_id)
    return ActiveChargingProfile.from_wire(stored.data) if stored else None
