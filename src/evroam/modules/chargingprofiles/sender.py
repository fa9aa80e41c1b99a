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
from evroam.ocpi.chargingprofiles import ActiveChargingProfile
from evroam.ocpi.status import invalid
from evroam.ocpi.types import URL, CiString
from evroam.modules.commands.asyncrequests import (
    PROFILE_RESULT_MODELS,
    ProfileRequest,
    expect_tracked,
    store_active_profile,
    store_result,
)
from evroam.server import routing
from evroam.server.auth import authenticate_registered
from evroam.server.body import parse_body
from evroam.server.objects import OLDER, ctx_of, respond
from evroam.server.responses import ocpi_response
from evroam.modules.commands.tracking import CHARGING_PROFILES

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


@router.post("/{request_type}/{uid}")
async def post_result(request: Request, request_type: str, uid: str):  # noqa: ANN201
    """The response_url of a request we sent: Active/ChargingProfile/ClearProfile result."""
    auth = await authenticate_registered(request)
    engine = ctx_of(request).engine
    await expect_tracked(engine, uid, CHARGING_PROFILES, request_type, auth.party)
    result = await parse_body(request, PROFILE_RESULT_MODELS[ProfileRequest(request_type)])
    tracked = await store_result(engine, uid, result)
    await ctx_of(request).hooks.fire(ChargingProfileEvent.RESULT, tracked, auth.party)
    return respond(request)


@router.put("/{session_id}")
async def put_active_profile(request: Request, session_id: str):  # noqa: ANN201
    """The CPO's update of a session's ActiveChargingProfile; answered without data."""
    auth = await authenticate_registered(request)
    p = _params(request, session_id, need_url=False)
    profile = await parse_body(request, ActiveChargingProfile)
    # The session's CPO, if the request names it believably (server/routing.py).
    who = routing.honoured_from(auth.party, routing.claimed(request).from_key)
    created = await store_active_profile(ctx_of(request).engine, auth.party, who, p.session_id, profile)
    if created is None:
        # A profile calculated before the one we hold arrived late: success, no change, no hook.
        return ocpi_response(status_message=OLDER)
    await ctx_of(request).hooks.fire(ChargingProfileEvent.ACTIVE_PROFILE, p.session_id, profile, auth.party)
    return respond(request, http_status=201 if created else 200)
