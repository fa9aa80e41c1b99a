"""ChargingProfiles module (mod_charging_profiles.asciidoc): Receiver (CPO)
and Sender (eMSP/SCSP) routers.

CPO, a decision hook per request; no hook means NOT_SUPPORTED:

    @node.on(ChargingProfileEvent.SET)
    async def set_profile(req: ChargingProfileRequest, handle: ResultHandle) -> ChargingProfileResponse:
        ...  # later: await handle.result(ChargingProfileResultType.ACCEPTED)
        return ChargingProfileResponse(result=ChargingProfileResponseType.ACCEPTED, timeout=30)

`req.session_id`, `req.duration` (GET_ACTIVE), `req.charging_profile` (SET);
`handle.session` is our stored Session. For GET_ACTIVE the result carries the
profile: `await handle.result(ChargingProfileResultType.ACCEPTED, profile=active)`.

eMSP/SCSP notifications: RESULT (tracked, party) when a result arrives;
ACTIVE_PROFILE (session_id, ActiveChargingProfile, party) when the CPO PUTs one.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import ValidationError

from evroam.modules.events import ChargingProfileEvent
from evroam.ocpi.base import OcpiModel, error_text
from evroam.ocpi.chargingprofiles import SetChargingProfile
from evroam.ocpi.status import invalid
from evroam.ocpi.types import URL, CiString
from evroam.modules.commands.asyncrequests import (
    ChargingProfileRequest,
    ProfileRequest,
    receive_profile_request,
)
from evroam.server.auth import authenticate_registered
from evroam.server.body import parse_body
from evroam.modules.commands.receiver import answer, caller_of, callbacks_of
from evroam.server.objects import ctx_of
from evroam.store.parties import Party

router = APIRouter()


class _Params(OcpiModel):
    session_id: CiString(36)
    response_url: URL | None = None


def _params(request: Request, session_id: str, *, need_url: bool) -> _Params:
    url = request.query_params.get("response_url")
    if need_url and not url:
        raise invalid("response_url: required")
    try:
        return _Params.from_wire({"session_id": session_id, "response_url": url})
    except ValidationError as exc:
        raise invalid(error_text(exc)) from None


async def _decide(request: Request, party: Party, event: ChargingProfileEvent,  # noqa: ANN202
                  req: ChargingProfileRequest):
    who = caller_of(request, party, "chargingprofiles")
    decision = await receive_profile_request(callbacks_of(request), who, req, ctx_of(request).hooks.get(event))
    return answer(request, decision)


@router.get("/{session_id}")
async def get_active_profile(request: Request, session_id: str):  # noqa: ANN201
    auth = await authenticate_registered(request)
    p = _params(request, session_id, need_url=True)
    raw = request.query_params.get("duration")
    if raw is None:
        raise invalid("duration: required")
    if not raw.isascii() or not raw.isdigit():
        raise invalid(f"duration: {raw!r} is not a number of seconds")
    req = ChargingProfileRequest(ProfileRequest.GET_ACTIVE, p.session_id, p.response_url, duration=int(raw))
    return await _decide(request, auth.party, ChargingProfileEvent.GET_ACTIVE, req)


@router.put("/{session_id}")
async def put_profile(request: Request, session_id: str):  # noqa: ANN201
    auth = await authenticate_registered(request)
    p = _params(request, session_id, need_url=False)
    body = await parse_body(request, SetChargingProfile)
    req = ChargingProfileRequest(ProfileRequest.SET, p.session_id, body.response_url,
                                 charging_profile=body.charging_profile)
    return await _decide(request, auth.party, ChargingProfileEvent.SET, req)


@router.delete("/{session_id}")
async def delete_profile(request: Request, session_id: str):  # noqa: ANN201
    auth = await authenticate_registered(request)
    p = _params(request, session_id, need_url=True)
    req = ChargingProfileRequest(ProfileRequest.CLEAR, p.session_id, p.response_url)
    return await _decide(request, auth.party, ChargingProfileEvent.CLEAR, req)
