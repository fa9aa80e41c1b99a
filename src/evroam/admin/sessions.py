"""Admin routes that drive one of our charging sessions (CPO side): start it,
add charging periods, stop it, issue its CDR. A thin layer over
evroam.modules.sessions.owner; each change is pushed to the token's eMSP.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import Field, ValidationError
from starlette.responses import Response

from evroam.admin import answers, bad_request, conflict, node_of, not_found, ok, refused, unknown_place
from evroam.ocpi.base import OcpiModel, error_text
from evroam.ocpi.cdrs import AuthMethod, CdrToken, ChargingPeriod
from evroam.ocpi.common import Price
from evroam.ocpi.sessions import SessionStatus
from evroam.ocpi.types import CiString, Currency, DateTime, Energy, String
from evroam.pricing import CdrBuildError, NoApplicableTariff
from evroam.modules.sessions import owner as ops
from evroam.sync.own import Refused

router = APIRouter()


class StartSession(OcpiModel):
    id: CiString(36) | None = Field(None, description="Session id; default: a new UUID.")
    location_id: CiString(36)
    evse_uid: CiString(36)
    connector_id: CiString(36)
    cdr_token: CdrToken
    currency: Currency
    auth_method: AuthMethod = AuthMethod.WHITELIST
    start_date_time: DateTime | None = Field(None, description="Default: now.")
    authorization_reference: CiString(36) | None = None
    meter_id: String(255) | None = None
    status: SessionStatus = SessionStatus.ACTIVE


class AddPeriods(OcpiModel):
    charging_periods: list[ChargingPeriod] = Field(default_factory=list)
    kwh: Energy | None = Field(None, description="Default: grows by the ENERGY of the new periods.")
    total_cost: Price | None = None
    status: SessionStatus | None = None


class StopSession(OcpiModel):
    end_date_time: DateTime | None = Field(None, description="Default: now.")
    charging_periods: list[ChargingPeriod] = Field(default_factory=list)
    kwh: Energy | None = None
    total_cost: Price | None = None


class IssueCdr(OcpiModel):
    cdr_id: CiString(36) | None = Field(None, description="Default: the session id.")
    tariff_ids: list[CiString(36)] | None = Field(
        None, description="Our tariffs to price with; default: those of the session's connector.")


def _session(session) -> Response:
    return ok(data_json=session.to_json_bytes())


async def _guard(coro):
    """The helpers' errors as admin answers."""
    try:
        return await coro
    except ops.UnknownSession as exc:
        raise not_found(str(exc)) from None
    except ops.UnknownPlace as exc:
        raise unknown_place(exc) from None
    except Refused as exc:
        raise refused(exc) from None
    except (ops.SessionFinished, ops.CdrExists, CdrBuildError, NoApplicableTariff) as exc:
        raise conflict(str(exc)) from None
    except ValidationError as exc:
        raise bad_request(error_text(exc)) from None
    except ValueError as exc:
        raise conflict(str(exc)) from None


@router.post("/sessions", status_code=201, summary="Start one of our sessions",
             description="Creates the Session (ACTIVE unless told otherwise) and PUTs it to the token's eMSP. "
                         "The Location, EVSE (not REMOVED) and Connector must be ours: otherwise 400 with "
                         "status_code 2003 naming the field, and nothing is stored or sent. A RESERVATION "
                         "may name EVSE and connector \"#NA\".",
             responses=answers(400, 409))
async def start_session(request: Request, body: StartSession) -> Response:
    session = await _guard(ops.start(
        node_of(request), session_id=body.id, location_id=body.location_id, evse_uid=body.evse_uid,
        connector_id=body.connector_id, cdr_token=body.cdr_token, currency=body.currency,
        auth_method=body.auth_method, start_date_time=body.start_date_time,
        authorization_reference=body.authorization_reference, meter_id=body.meter_id, status=body.status,
        require_place=True))
    return ok(data_json=session.to_json_bytes(), http_status=201)


@router.patch("/sessions/{session_id}", summary="Add charging periods to one of our sessions",
              description="The eMSP gets a PATCH with just the new periods (it appends them).",
              responses=answers(400, 404, 409))
async def add_periods(request: Request, session_id: str, body: AddPeriods) -> Response:
    return _session(await _guard(ops.update(node_of(request), session_id, body.charging_periods, kwh=body.kwh,
                                            total_cost=body.total_cost, status=body.status)))


@router.post("/sessions/{session_id}/stop", summary="Stop one of our sessions (COMPLETED)",
             responses=answers(400, 404, 409))
async def stop_session(request: Request, session_id: str, body: StopSession | None = None) -> Response:
    body = body or StopSession()
    return _session(await _guard(ops.stop(node_of(request), session_id, end_date_time=body.end_date_time,
                                          charging_periods=body.charging_periods, kwh=body.kwh,
                                          total_cost=body.total_cost)))


@router.post("/sessions/{session_id}/cdr", status_code=201, summary="Issue the CDR of a COMPLETED session",
             description="Prices the session with the tariff(s) of its connector in our published Location "
                         "and POSTs the CDR to the eMSP. A CDR is issued once (409 after that).",
             responses=answers(400, 404, 409))
async def issue_cdr(request: Request, session_id: str, body: IssueCdr | None = None) -> Response:
    body = body or IssueCdr()
    node = node_of(request)
    session = await _guard(ops.get_session(node, session_id))
    location = await ops.our_location(node, session)
    if location is None:
        raise conflict(f"location {session.location_id!r} is not published: the CDR needs its address and "
                       "time zone")
    tariffs = await ops.connector_tariffs(node, location, session.evse_uid, session.connector_id,
                                          tariff_ids=body.tariff_ids)
    if not tariffs:
        raise conflict(f"no tariff of ours to price session {session.id!r} with (connector "
                       f"{session.evse_uid}/{session.connector_id})")
    cdr = await _guard(ops.issue_cdr(node, session, tariffs[0] if len(tariffs) == 1 else tariffs, location,
                                     cdr_id=body.cdr_id))
    return ok(data_json=cdr.to_json_bytes(), http_status=201)
