"""Commands, Receiver interface (the CPO): POST /{command_type}.

A decision hook per command type. A command at a location we do not have is
2003 (REJECTED) and a STOP_SESSION for a session we do not have is
UNKNOWN_SESSION before any hook is asked; then the hook decides, and without
one the answer is NOT_SUPPORTED:

    @node.on(CommandType.START_SESSION)
    async def start(command: StartSession, handle: ResultHandle) -> CommandResponse:
        asyncio.create_task(remote_start(command, handle))  # later: await handle.result(CommandResultType.ACCEPTED)
        return CommandResponse(result=CommandResponseType.ACCEPTED, timeout=30)

Recording, the hook call and results are the tracker's (sync/tracker.py).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncEngine

from evroam.modules.commands import MODULE
from evroam.modules.commands.owner import COMMAND_MODELS
from evroam.ocpi.base import OcpiModel
from evroam.ocpi.commands import CommandResponse, CommandResponseType, CommandType
from evroam.ocpi.common import DisplayText
from evroam.ocpi.locations import Location
from evroam.ocpi.sessions import Session
from evroam.ocpi.status import StatusCode, invalid, not_found
from evroam.ocpi.types import ci_key
from evroam.server.auth import authenticate_registered
from evroam.server.body import parse_body
from evroam.server.objects import ctx_of
from evroam.sync import tracker
from evroam.sync.tracker import Caller, Decision

router = APIRouter()

_AT_LOCATION = (CommandType.START_SESSION, CommandType.RESERVE_NOW, CommandType.UNLOCK_CONNECTOR)


@router.post("/{command_type}")
async def post_command(request: Request, command_type: str):
    auth = await authenticate_registered(request)
    try:
        ct = CommandType(command_type)  # enum values are case-sensitive
    except ValueError:
        raise not_found(f"unknown command {command_type!r}") from None
    command = await parse_body(request, COMMAND_MODELS[ct])
    who = tracker.caller_of(request, auth.party, MODULE.id)
    decision = await receive_command(tracker.callbacks_of(request), who, ct, command, ctx_of(request).hooks.get(ct))
    return tracker.answer(request, decision)


async def receive_command(callbacks: tracker.Callbacks, who: Caller, command_type: CommandType, command: OcpiModel,
                          hook: tracker.Hook | None) -> Decision:
    """The CPO's answer to a command (mod_commands, Receiver POST).

    Raises OcpiError (2001) for a request that is invalid against our data;
    such a request is not recorded. Everything else is.
    """
    req = tracker.Received(MODULE.id, command_type.value, None, command.response_url,  # type: ignore[attr-defined]
                           command.to_json_bytes().decode(), command)
    pre: Decision | None = None
    if command_type in _AT_LOCATION:
        pre = await _at_location(callbacks.engine, who, command_type, command, req)
    elif command_type == CommandType.STOP_SESSION:
        pre = await _stop_session(callbacks.engine, who, command, req)
    elif command_type == CommandType.CANCEL_RESERVATION:
        # Reservations live in the charge points: whether one is known is
        # their result (UNKNOWN_RESERVATION), there is no synchronous answer for it.
        req.ref = command.reservation_id  # type: ignore[attr-defined]
    if pre is None and hook is None:
        pre = Decision(_command_response(CommandResponseType.NOT_SUPPORTED, f"{command_type.value} is not supported"))
    return await tracker.decide(callbacks, who, req, pre, hook)


async def _at_location(engine: AsyncEngine, who: Caller, command_type: CommandType, command: Any,
                       req: tracker.Received) -> Decision | None:
    """START_SESSION, RESERVE_NOW, UNLOCK_CONNECTOR: one of our locations, its
    EVSE and connector, and a token of the caller's own."""
    req.ref = command.location_id
    async with engine.connect() as conn:
        stored = await tracker.find_ours(conn, "locations", req.ref, who.ours)
    if stored is None:
        # The spec's sequence diagram: status_code 2003 with CommandResponse REJECTED.
        msg = f"unknown location {req.ref!r}"
        return Decision(_command_response(CommandResponseType.REJECTED, msg), StatusCode.UNKNOWN_LOCATION, msg)
    pre = _check_location(command_type, command, json.loads(stored.data))
    req.location = Location.from_wire(stored.data)
    token = getattr(command, "token", None)
    # Not a validity check (the CPO must not check the token): an eMSP may
    # only use tokens it owns, so nobody charges on another's contract.
    if pre is None and token is not None and (ci_key(token.country_code), ci_key(token.party_id)) \
            not in who.requester:
        msg = f"token {token.country_code}/{token.party_id}/{token.uid} is not one of yours"
        pre = Decision(_command_response(CommandResponseType.REJECTED, msg), status_message=msg)
    return pre


async def _stop_session(engine: AsyncEngine, who: Caller, command: Any, req: tracker.Received) -> Decision | None:
    req.ref = command.session_id
    async with engine.connect() as conn:
        stored = await tracker.find_ours(conn, "sessions", req.ref, who.ours)
    if stored is None:
        return Decision(_command_response(CommandResponseType.UNKNOWN_SESSION, f"unknown session {req.ref!r}"))
    if tracker.session_owner(json.loads(stored.data)) not in who.requester:
        return Decision(_command_response(CommandResponseType.REJECTED, "not your session"))
    req.session = Session.from_wire(stored.data)
    return None


def _command_response(result: CommandResponseType, message: str | None = None, timeout: int = 0) -> CommandResponse:
    return CommandResponse(result=result, timeout=timeout,
                           message=[DisplayText(language="en", text=message)] if message else None)


def _check_location(command_type: CommandType, command: Any, location: dict[str, Any]) -> Decision | None:
    """EVSE and connector of a command at one of our locations."""
    evse_uid = getattr(command, "evse_uid", None)
    if evse_uid is None:
        return None
    evse = next((e for e in location.get("evses") or () if ci_key(e["uid"]) == ci_key(evse_uid)
                 and e.get("status") != "REMOVED"), None)
    if evse is None:
        msg = f"unknown EVSE {evse_uid!r} at location {location['id']!r}"
        return Decision(_command_response(CommandResponseType.REJECTED, msg), status_message=msg)
    connector_id = getattr(command, "connector_id", None)
    if connector_id is None:
        if command_type == CommandType.START_SESSION and "START_SESSION_CONNECTOR_REQUIRED" in (
                evse.get("capabilities") or ()):
            raise invalid(f"connector_id: required to start a session on EVSE {evse_uid!r} "
                          "(START_SESSION_CONNECTOR_REQUIRED)")
        return None
    if not any(ci_key(c["id"]) == ci_key(connector_id) for c in evse.get("connectors") or ()):
        msg = f"unknown connector {connector_id!r} on EVSE {evse_uid!r}"
        return Decision(_command_response(CommandResponseType.REJECTED, msg), status_message=msg)
    return None
