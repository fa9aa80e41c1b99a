"""ChargingProfiles, Receiver interface (the CPO): GET, PUT and DELETE
/{session_id}.

A decision hook per request; no hook means NOT_SUPPORTED:

    @node.on(ChargingProfileEvent.SET)
    async def set_profile(req: ChargingProfileRequest, handle: ResultHandle) -> ChargingProfileResponse:
        ...  # later: await handle.result(ChargingProfileResultType.ACCEPTED)
        return ChargingProfileResponse(result=ChargingProfileResponseType.ACCEPTED, timeout=30)

`req.session_id`, `req.duration` (GET_ACTIVE), `req.charging_profile` (SET);
`handle.session` is our stored Session. For GET_ACTIVE the result carries the
profile: `await handle.result(ChargingProfileResultType.ACCEPTED, profile=active)`.

eMSP/SCSP notifications (sender.py): RESULT (tracked, party) when a result
arrives; ACTIVE_PROFILE (session_id, ActiveChargingProfile, party) when the
CPO PUTs one.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError

from evroam.modules.chargingprofiles import MODULE
from evroam.modules.chargingprofiles.owner import ChargingProfileRequest, ProfileRequest
from evroam.ocpi.base import OcpiModel, error_text
from evroam.modules.events import ChargingProfileEvent
from evroam.ocpi.chargingprofiles import ChargingProfileResponse, ChargingProfileResponseType, SetChargingProfile
from evroam.ocpi.common import Role
from evroam.ocpi.sessions import Session
from evroam.ocpi.status import invalid
from evroam.ocpi.types import URL, CiString
from evroam.server.auth import authenticate_registered
from evroam.server.body import parse_body
from evroam.server.objects import ctx_of
from evroam.store.objects import Stored
from evroam.store.parties import Party
from evroam.sync import tracker
from evroam.sync.tracker import Caller, Decision

__all__ = ["ChargingProfileEvent", "ChargingProfileRequest", "ProfileRequest", "receive_profile_request", "router"]

router = APIRouter()


class _Params(OcpiModel):
    session_id: CiString(36)
    response_url: URL | None = None


def session_params(request: Request, session_id: str, *, need_url: bool) -> _Params:
    """The session id of the path and the response_url of the query, checked."""
    url = request.query_params.get("response_url")
    if need_url and not url:
        raise invalid("response_url: required")
    try:
        return _Params.from_wire({"session_id": session_id, "response_url": url})
    except ValidationError as exc:
        raise invalid(error_text(exc)) from None


async def _decide(request: Request, party: Party, event: ChargingProfileEvent,
                  req: ChargingProfileRequest):
    who = tracker.caller_of(request, party, MODULE.id)
    decision = await receive_profile_request(tracker.callbacks_of(request), who, req, ctx_of(request).hooks.get(event))
    return tracker.answer(request, decision)


@router.get("/{session_id}")
async def get_active_profile(request: Request, session_id: str):
    auth = await authenticate_registered(request)
    p = session_params(request, session_id, need_url=True)
    raw = request.query_params.get("duration")
    if raw is None:
        raise invalid("duration: required")
    if not raw.isascii() or not raw.isdigit():
        raise invalid(f"duration: {raw!r} is not a number of seconds")
    req = ChargingProfileRequest(ProfileRequest.GET_ACTIVE, p.session_id, p.response_url, duration=int(raw))
    return await _decide(request, auth.party, ChargingProfileEvent.GET_ACTIVE, req)


@router.put("/{session_id}")
async def put_profile(request: Request, session_id: str):
    auth = await authenticate_registered(request)
    p = session_params(request, session_id, need_url=False)
    body = await parse_body(request, SetChargingProfile)
    req = ChargingProfileRequest(ProfileRequest.SET, p.session_id, body.response_url,
                                 charging_profile=body.charging_profile)
    return await _decide(request, auth.party, ChargingProfileEvent.SET, req)


@router.delete("/{session_id}")
async def delete_profile(request: Request, session_id: str):
    auth = await authenticate_registered(request)
    p = session_params(request, session_id, need_url=True)
    req = ChargingProfileRequest(ProfileRequest.CLEAR, p.session_id, p.response_url)
    return await _decide(request, auth.party, ChargingProfileEvent.CLEAR, req)


async def receive_profile_request(callbacks: tracker.Callbacks, who: Caller, request: ChargingProfileRequest,
                                  hook: tracker.Hook | None) -> Decision:
    """The CPO's answer to a ChargingProfiles GET, PUT or DELETE."""
    async with callbacks.engine.connect() as conn:
        stored = await tracker.find_ours(conn, "sessions", request.session_id, who.ours)
    pre = _check_session(who, request, stored)
    if pre is None and hook is None:
        pre = _response(ChargingProfileResponseType.NOT_SUPPORTED, "charging profiles are not supported")
    session = Session.from_wire(stored.data) if stored is not None else None
    req = tracker.Received(MODULE.id, request.type.value, request.session_id, request.response_url,
                           _recorded(request), request, session=session)
    return await tracker.decide(callbacks, who, req, pre, hook)


def _response(result: ChargingProfileResponseType, msg: str | None = None) -> Decision:
    return Decision(ChargingProfileResponse(result=result, timeout=0), status_message=msg)


def _check_session(who: Caller, request: ChargingProfileRequest, stored: Stored | None) -> Decision | None:
    if stored is None:
        return _response(ChargingProfileResponseType.UNKNOWN_SESSION, f"unknown session {request.session_id!r}")
    # Profiles are for the token owner's sessions. A party without that
    # ownership (an SCSP, or a Hub relaying one) needs a contract with
    # the CPO, which only the hook knows about; an eMSP is refused here.
    roles = {r.get("role") for r in who.party.roles or ()}
    mine = tracker.session_owner(json.loads(stored.data)) in who.requester
    if not mine and not roles & {Role.SCSP.value, Role.HUB.value}:
        return _response(ChargingProfileResponseType.REJECTED, "not your session")
    return None


def _recorded(request: ChargingProfileRequest) -> str:
    """The request as we keep it: the SetChargingProfile, or the query."""
    if request.type == ProfileRequest.SET:
        return SetChargingProfile(charging_profile=request.charging_profile,  # type: ignore[arg-type]
                                  response_url=request.response_url).to_json_bytes().decode()
    q: dict[str, Any] = {"response_url": request.response_url}
    if request.duration is not None:
        q["duration"] = request.duration
    return json.dumps(q)
