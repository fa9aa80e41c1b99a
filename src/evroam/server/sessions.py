"""Sessions module (mod_sessions.asciidoc): Sender (CPO) and Receiver (eMSP) routers.

Sender: GET list (date_from required) showing a partner only the sessions of
its own tokens, and PUT `/{session_id}/charging_preferences`.
Receiver: GET, PUT and PATCH on `/{country_code}/{party_id}/{session_id}`; a
PUT replaces the charging periods, a PATCH appends them.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

import structlog
from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.responses import Response

from evroam.ocpi.base import error_text
from evroam.ocpi.cdrs import ChargingPeriod
from evroam.ocpi.locations import Capability
from evroam.ocpi.modules import SESSIONS, ObjectModule
from evroam.ocpi.sessions import ChargingPreferences, ChargingPreferencesResponse, Session, SessionStatus
from evroam.ocpi.status import OcpiError, StatusCode, not_found
from evroam.ocpi.types import ci_key, parse_datetime
from evroam.server import objects as common
from evroam.server.auth import authenticate_registered
from evroam.server.body import parse_body
from evroam.server.hooks import Received
from evroam.server.paging import page_request, paged_response
from evroam.server.responses import ocpi_response
from evroam.store import objects as repo
from evroam.store.objects import ObjectKey
from evroam.store.parties import Party
from evroam.store.tables import OURS
from evroam.store.objects import ref_key

log = structlog.get_logger(__name__)

sender = APIRouter()
receiver = APIRouter()


class SessionEvent(StrEnum):
    """Sessions hooks that answer (rather than notify).

    CHARGING_PREFERENCES: `async def hook(session, preferences, party) ->
    ChargingPreferencesResponse`, called for an ongoing session of the
    caller's at a CHARGING_PREFERENCES_CAPABLE EVSE.
    """

    CHARGING_PREFERENCES = "sessions.charging_preferences"


# Without a hook nothing acts on preferences, whatever the profile: the
# demand cannot be fulfilled (NOT_POSSIBLE), rather than "this profile is not
# supported" (PROFILE_TYPE_NOT_SUPPORTED), which would suggest another
# profile might work.
DEFAULT_PREFERENCES_RESPONSE = ChargingPreferencesResponse.NOT_POSSIBLE
FINISHED = frozenset({SessionStatus.COMPLETED, SessionStatus.INVALID})


def caller_ref_keys(party: Party) -> set[str]:
    """The ref_keys (cc+pid of a cdr_token) a partner may see: its own roles'."""
    return {ci_key(r["country_code"] + r["party_id"]) for r in party.roles or ()}


async def own_list(request: Request, module: ObjectModule, *, date_from_required: bool = False) -> Response:
    """Sender GET list of Sessions or CDRs: only those of the caller's tokens."""
    auth = await authenticate_registered(request)
    page = page_request(request, date_from_required=date_from_required)
    async with common.ctx_of(request).engine.connect() as conn:
        docs, total = await repo.page(conn, module.id, OURS, offset=page.offset, limit=page.limit,
                                      date_from=page.date_from, date_to=page.date_to,
                                      ref_keys=caller_ref_keys(auth.party))
    return paged_response(request, page, total, repo.splice(docs))


# --- Sender (CPO) -----------------------------------------------------------------------


@sender.get("")
async def get_sessions(request: Request):  # noqa: ANN201
    return await own_list(request, SESSIONS, date_from_required=True)


@sender.put("/{session_id}/charging_preferences")
async def put_charging_preferences(request: Request, session_id: str):  # noqa: ANN201
    auth = await authenticate_registered(request)
    ctx = common.ctx_of(request)
    preferences = await parse_body(request, ChargingPreferences)
    async with ctx.engine.connect() as conn:
        stored = await repo.find_any_owner(conn, SESSIONS.id, session_id, OURS)
        session = Session.from_wire(stored.data) if stored is not None else None
        # Another eMSP's session is as unknown to this caller as a missing one.
        if session is None or ref_key(SESSIONS, session) not in caller_ref_keys(auth.party):
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


# --- Receiver (eMSP) --------------------------------------------------------------------


@receiver.get("/{country_code}/{party_id}/{session_id}")
async def get_session(request: Request, country_code: str, party_id: str, session_id: str):  # noqa: ANN201
    return await common.receiver_get(request, SESSIONS, country_code, party_id, session_id)


@receiver.put("/{country_code}/{party_id}/{session_id}")
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


@receiver.patch("/{country_code}/{party_id}/{session_id}")
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


def append_periods(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A Session PATCH: fields replace, but charging_periods are added to the
    stored ones; absent or empty, the stored periods stay (mod_sessions).

    A period equal to one already stored is not added twice: a PATCH retried
    after a lost response must not double the energy.
    """
    merged = {**current, **patch}
    old = current.get("charging_periods") or []
    new = patch.get("charging_periods") or []
    if not new:
        if old:
            merged["charging_periods"] = old
        else:
            merged.pop("charging_periods", None)
        return merged
    if not isinstance(new, list):
        return merged  # validation names the field
    known = []
    for p in old:
        try:
            known.append(ChargingPeriod.from_wire(p))
        except ValidationError:
            continue
    added = []
    for i, p in enumerate(new):
        try:
            period = ChargingPeriod.from_wire(p)
        except ValidationError as exc:
            raise OcpiError(StatusCode.INVALID_PARAMETERS,
                            f"PATCH makes the object invalid: charging_periods.{i}: {error_text(exc)}") from None
        if period not in known:
            known.append(period)
            added.append(p)
    merged["charging_periods"] = old + added
    return merged


async def knows_evse(conn: AsyncConnection, owner_id: int, session: Session) -> bool:
    """Whether we hold (from that CPO) the Location and EVSE the session names."""
    stored = await repo.get(conn, ObjectKey("locations", owner_id, session.country_code, session.party_id,
                                            session.location_id))
    if stored is None:
        return False
    uid = ci_key(session.evse_uid)
    return any(ci_key(e.get("uid", "")) == uid for e in json.loads(stored.data).get("evses") or ())
