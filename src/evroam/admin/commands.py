"""Admin routes for Commands and ChargingProfiles (eMSP/SCSP side): send a
request to a partner CPO and follow it by its tracking id. A thin layer over
the modules' client.py; the states are explained in evroam.sync.tracker.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.responses import Response

from evroam.admin import answers, bad_request, conflict, node_of, not_found, ok, parse_object
from evroam.ocpi.base import OcpiModel
from evroam.ocpi.chargingprofiles import ChargingProfile
from evroam.ocpi.commands import CancelReservation, CommandType, ReserveNow, StartSession, StopSession, UnlockConnector
from evroam.ocpi.types import URL, CiString, Int
from evroam.modules import chargingprofiles, commands
from evroam.modules.chargingprofiles import client as profiles
from evroam.modules.chargingprofiles.owner import ProfileRequest
from evroam.modules.commands import client as ops
from evroam.sync.tracker import InvalidRequest, SendError, tracked

router = APIRouter()

_NO_URL = Field(None, description="Leave out: evroam makes a unique response_url for every request.")


# The command objects without response_url (the OCPI models' own rules still apply).
class CancelReservationRequest(CancelReservation):
    response_url: URL | None = _NO_URL


class ReserveNowRequest(ReserveNow):
    response_url: URL | None = _NO_URL


class StartSessionRequest(StartSession):
    response_url: URL | None = _NO_URL


class StopSessionRequest(StopSession):
    response_url: URL | None = _NO_URL


class UnlockConnectorRequest(UnlockConnector):
    response_url: URL | None = _NO_URL


REQUEST_MODELS: dict[CommandType, type[OcpiModel]] = {
    CommandType.CANCEL_RESERVATION: CancelReservationRequest,
    CommandType.RESERVE_NOW: ReserveNowRequest,
    CommandType.START_SESSION: StartSessionRequest,
    CommandType.STOP_SESSION: StopSessionRequest,
    CommandType.UNLOCK_CONNECTOR: UnlockConnectorRequest,
}


class ProfileRequestBody(OcpiModel):
    session_id: CiString(36)
    duration: Int | None = Field(None, ge=0, description="GET_ACTIVE: seconds of profile wanted.")
    charging_profile: ChargingProfile | None = Field(None, description="SET: the profile to set.")


async def _send(coro):
    try:
        return await coro
    except KeyError as exc:
        raise not_found(str(exc.args[0]) if exc.args else "unknown partner") from None
    except InvalidRequest as exc:
        raise bad_request(str(exc)) from None
    except SendError as exc:
        raise conflict(str(exc)) from None


async def _show(request: Request, tracking_id: str, kind: str) -> Response:
    t = await tracked(node_of(request).engine, tracking_id)
    if t is None or t.kind != kind:
        raise not_found(f"no {kind} request {tracking_id!r}")
    return ok(t.to_dict())


@router.post("/commands/{partner}/{command_type}", status_code=201, summary="Send a command to a partner CPO",
             description="The body is the command object without response_url. Answers the tracking id and "
                         "the state after the CPO's synchronous response.", responses=answers(400, 404, 409))
async def send_command(request: Request, partner: str, command_type: CommandType) -> Response:
    body = await parse_object(request, REQUEST_MODELS[command_type])
    node = node_of(request)
    uid = await _send(ops.send_command(node, partner, command_type, body.to_wire()))
    t = await tracked(node.engine, uid)
    return ok(t.to_dict() if t else {"id": uid}, http_status=201)


@router.get("/commands/{tracking_id}", summary="The state of a command we sent (or received)",
            responses=answers(404))
async def get_command(request: Request, tracking_id: str) -> Response:
    return await _show(request, tracking_id, commands.MODULE.id)


@router.post("/chargingprofiles/{partner}/{request_type}", status_code=201,
             summary="Ask a partner CPO to get the active profile, set one or clear it",
             description="request_type: GET_ACTIVE (needs duration), SET (needs charging_profile) or CLEAR.",
             responses=answers(400, 404, 409))
async def send_profile_request(request: Request, partner: str, request_type: ProfileRequest) -> Response:
    body = await parse_object(request, ProfileRequestBody)
    node = node_of(request)
    uid = await _send(profiles.send_profile_request(node, partner, request_type, body.session_id,
                                                    duration=body.duration, charging_profile=body.charging_profile))
    t = await tracked(node.engine, uid)
    return ok(t.to_dict() if t else {"id": uid}, http_status=201)


@router.get("/chargingprofiles/{tracking_id}", summary="The state of a charging-profile request",
            responses=answers(404))
async def get_profile_request(request: Request, tracking_id: str) -> Response:
    return await _show(request, tracking_id, chargingprofiles.MODULE.id)
