"""Commands and ChargingProfiles (mod_commands, mod_charging_profiles): the
receiving half of the two asynchronous modules, what the routers need. The
requests we send ourselves are in sync/commands.py.

CPO (Receiver): `receive_command` and `receive_profile_request` first check
what the protocol itself can check (location, session, whose session it is),
then ask the business hook, and only without a hook answer NOT_SUPPORTED:
an unknown location is 2003 and an unknown session UNKNOWN_SESSION whether
or not a hook is installed. They record the request and give the
synchronous answer. The
hook reports the charge point's result later through its `ResultHandle`,
which POSTs it to the response_url in the background, and only once the
ACCEPTED answer has been sent.

eMSP/SCSP (Sender): every request we send has its own response_url ending in
a unique id, recorded as PENDING. `expect_tracked` matches a result to its
request by that id alone, so any number can be in flight at once, and
`store_result` records it.

Timeouts are evaluated lazily. When the answer is ACCEPTED, the deadline
(answer time + the CPO's timeout) is stored; every read (`tracked`) and
every arriving result first turns an overdue ACCEPTED request into TIMEOUT,
with one conditional UPDATE. Nothing has to be scheduled, it survives
restarts, and several processes agree. `expire_overdue` does all of them at
once, for a periodic sweep that wants to notice timeouts nobody reads.

A result that arrives after the deadline is stored (result, result_at,
`late`) but the state stays TIMEOUT: whoever waited was already told it
timed out, and the state must not flip behind their back. The CPO still gets
1000 for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from evroam.ocpi.base import OcpiModel
from evroam.ocpi.chargingprofiles import (
    ActiveChargingProfile,
    ActiveChargingProfileResult,
    ChargingProfile,
    ChargingProfileResponse,
    ChargingProfileResponseType,
    ChargingProfileResult,
    ChargingProfileResultType,
    ClearProfileResult,
    SetChargingProfile,
)
from evroam.ocpi.commands import (
    CancelReservation,
    CommandResponse,
    CommandResponseType,
    CommandResult,
    CommandResultType,
    CommandType,
    ReserveNow,
    StartSession,
    StopSession,
    UnlockConnector,
)
from evroam.ocpi.common import DisplayText, Role
from evroam.ocpi.headers import Routing, RoutingRequest
from evroam.ocpi.locations import Location
from evroam.ocpi.sessions import Session
from evroam.ocpi.status import StatusCode, invalid, not_found
from evroam.ocpi.types import ci_key
from evroam.ocpi.versions import InterfaceRole
from evroam.server.routing import honoured_from, is_hub, requesting_party
from evroam.modules.commands import tracking as repo
from evroam.store import objects
from evroam.store import parties as party_repo
from evroam.modules.commands.tracking import ACCEPTED, CHARGING_PROFILES, COMMANDS, IN, OUT, Tracked
from evroam.store.objects import ObjectKey, Stored
from evroam.store.parties import Party
from evroam.store.tables import OURS

log = structlog.get_logger(__name__)

# A hook that answers with a bare response type gets this timeout.
DEFAULT_TIMEOUT_S = 60
# How long a result reported before the answer went out waits for it.
RELEASE_WAIT_S = 60.0
# Where the eMSP keeps the ActiveChargingProfiles a CPO PUTs (objects table).
ACTIVE_PROFILES = "activechargingprofiles"


class ProfileRequest(StrEnum):
    """The three ChargingProfiles requests, named by what they ask for."""

    GET_ACTIVE = "GET_ACTIVE"  # GET: answered by an ActiveChargingProfileResult
    SET = "SET"  # PUT SetChargingProfile: a ChargingProfileResult
    CLEAR = "CLEAR"  # DELETE: a ClearProfileResult


COMMAND_MODELS: dict[CommandType, type[OcpiModel]] = {
    CommandType.CANCEL_RESERVATION: CancelReservation,
    CommandType.RESERVE_NOW: ReserveNow,
    CommandType.START_SESSION: StartSession,
    CommandType.STOP_SESSION: StopSession,
    CommandType.UNLOCK_CONNECTOR: UnlockConnector,
}
PROFILE_RESULT_MODELS: dict[ProfileRequest, type[OcpiModel]] = {
    ProfileRequest.GET_ACTIVE: ActiveChargingProfileResult,
    ProfileRequest.SET: ChargingProfileResult,
    ProfileRequest.CLEAR: ClearProfileResult,
}
_AT_LOCATION = (CommandType.START_SESSION, CommandType.RESERVE_NOW, CommandType.UNLOCK_CONNECTOR)


class CommandStateError(RuntimeError):
    """A result where the protocol allows none (the answer was not ACCEPTED)."""


def new_uid() -> str:
    return uuid.uuid4().hex


# How a result reaches a partner's response_url: (party, url, body, routing) ->
# None once the partner took it, else the error text. Passed in (the node makes
# it from its outbound client) because the server layer must not depend on the
# client layer.
PostResult = Callable[[Party, str, bytes, Routing | None], Awaitable[str | None]]


# --- CPO side: results reported through a handle ---------------------------------------------


class Callbacks:
    """One per node: posts results to partners' response_urls in the background
    and keeps those tasks, so stopping the node ends them cleanly."""

    def __init__(self, engine: AsyncEngine, post_result: PostResult | None = None,
                 roles: list[tuple[Role, str, str]] | None = None) -> None:
        self.engine = engine
        self.post_result = post_result
        self.roles = roles or []
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    async def handle(self, tracking_id: str) -> ResultHandle:
        """The handle of a request we received earlier, e.g. to report
        CANCELED_RESERVATION on a reservation long after its first result."""
        async with self.engine.connect() as conn:
            t = await repo.get(conn, tracking_id)
            party = await party_repo.get(conn, t.party_id) if t is not None else None
        if t is None or t.direction != IN or party is None:
            raise KeyError(f"no received request {tracking_id!r}")
        ours = next(((cc, pid) for r, cc, pid in self.roles if r == Role.CPO), None)
        handle = ResultHandle(self, t.id, t.kind, t.type, t.response_url, party, routing_for(ours, None, party))
        handle.release(t.response)
        return handle


class ResultHandle:
    """Given to a CPO hook with the request: `await handle.result(...)` reports
    the charge point's result. It returns the background task (True once the
    partner took it); awaiting that is optional."""

    def __init__(self, callbacks: Callbacks, tracking_id: str, kind: str, type_: str, response_url: str,
                 party: Party, routing: Routing | None, *, location: Location | None = None,
                 session: Session | None = None) -> None:
        self.callbacks = callbacks
        self.id = tracking_id
        self.kind = kind
        self.type = type_
        self.response_url = response_url
        self.party = party
        self.routing = routing
        self.location = location  # commands at a location: our stored Location
        self.session = session  # STOP_SESSION and charging profiles: our stored Session
        self._response: str | None = None
        self._released = asyncio.Event()

    def release(self, response: str | None) -> None:
        """Called once the synchronous answer has been sent: results may follow."""
        self._response = response
        self._released.set()

    async def result(self, result: Any, message: list[DisplayText] | None = None,
                     profile: ActiveChargingProfile | None = None) -> asyncio.Task[bool]:
        body = self._body(result, message, profile)
        if self._released.is_set() and self._response != ACCEPTED:
            raise CommandStateError(f"{self.kind} {self.type} {self.id} was answered {self._response}: "
                                    "a result only follows ACCEPTED")
        if self.callbacks.post_result is None:
            raise RuntimeError("this node has no outbound client (start() it first)")
        return self.callbacks.spawn(self._deliver(body), name=f"{self.kind}-result-{self.id}")

    def _body(self, result: Any, message: list[DisplayText] | None,
              profile: ActiveChargingProfile | None) -> OcpiModel:
        if self.kind == COMMANDS:
            if isinstance(result, CommandResult):
                return result
            if profile is not None:
                raise ValueError("a CommandResult has no profile")
            return CommandResult(result=CommandResultType(result), message=message)
        model = PROFILE_RESULT_MODELS[ProfileRequest(self.type)]
        if isinstance(result, model):
            return result
        if message is not None:
            raise ValueError("ChargingProfile results carry no message")
        if profile is not None:
            if model is not ActiveChargingProfileResult:
                raise ValueError(f"a {model.__name__} has no profile")
            return ActiveChargingProfileResult(result=ChargingProfileResultType(result), profile=profile)
        return model(result=ChargingProfileResultType(result))

    async def _deliver(self, body: OcpiModel) -> bool:
        try:
            await asyncio.wait_for(self._released.wait(), RELEASE_WAIT_S)
        except TimeoutError:
            log.warning("commands.result_dropped", id=self.id, reason="the answer was never sent")
            return False
        if self._response != ACCEPTED:
            # Reported from inside the hook, which then did not accept.
            log.warning("commands.result_dropped", id=self.id, response=self._response)
            return False
        data = body.to_json_bytes()
        async with self.callbacks.engine.connect() as conn:
            party = await party_repo.get(conn, self.party.id)  # the current token, after any rotation
        error: str | None = None
        if party is None or party.status != party_repo.REGISTERED or not party.token_out:
            error = "partner not registered"
        else:
            assert self.callbacks.post_result is not None
            error = await self.callbacks.post_result(party, self.response_url, data, self.routing)
        async with self.callbacks.engine.begin() as conn:
            await repo.record_result(conn, self.id, getattr(body, "result").value, data.decode(),
                                     delivery_error=error)
        if error:
            log.warning("commands.result_not_delivered", id=self.id, url=self.response_url, error=error)
        return error is None


# --- CPO side: deciding on a request --------------------------------------------------------


@dataclass(slots=True)
class Caller:
    """Who asks, as the CPO sees it."""

    party: Party
    # The cc/pid keys the request is made for: the caller's own roles, or the
    # OCPI-from party when the caller is a Hub.
    requester: set[tuple[str, str]]
    # Which of our roles was addressed (OCPI-to), None when not said.
    ours: tuple[str, str] | None
    routing: Routing | None = None


@dataclass(slots=True)
class Decision:
    """The synchronous answer: CommandResponse or ChargingProfileResponse."""

    response: OcpiModel
    status_code: int = StatusCode.SUCCESS
    status_message: str | None = None
    handle: ResultHandle | None = None


@dataclass(frozen=True, slots=True)
class ChargingProfileRequest:
    """What a ChargingProfiles hook receives (the session is on the handle)."""

    type: ProfileRequest
    session_id: str
    response_url: str
    duration: int | None = None  # GET_ACTIVE
    charging_profile: ChargingProfile | None = None  # SET


Hook = Callable[[Any, ResultHandle], Awaitable[Any]]


def caller(party: Party, claimed: RoutingRequest, our_cpo_keys: set[tuple[str, str]], module: str) -> Caller:
    """The Caller of a request to our `module` Receiver, from the party and
    its checked routing headers. OCPI-from counts only where it names one of
    the caller's roles, or the caller is a Hub (server/routing.py)."""
    roles = {(ci_key(r["country_code"]), ci_key(r["party_id"])) for r in party.roles or ()}
    via_hub = honoured_from(party, claimed.from_key) if is_hub(party) else None
    requester = {(ci_key(via_hub[0]), ci_key(via_hub[1]))} if via_hub else roles
    frm = requesting_party(party, claimed.from_key, module, InterfaceRole.RECEIVER)
    ours = claimed.to_key if claimed.to_key in our_cpo_keys else None
    return Caller(party, requester, ours, routing_for(ours or next(iter(sorted(our_cpo_keys)), None), frm, party))


def routing_for(ours: tuple[str, str] | None, to: tuple[str, str] | None, party: Party) -> Routing | None:
    """From our role `ours` to `to`, else to the party's first role; None
    without a role of ours to send from."""
    if ours is None:
        return None
    if to is None:
        to = next(((r["country_code"], r["party_id"]) for r in party.roles or ()), None)
    return Routing(ours[0], ours[1], *(to or (None, None)))


async def _find_ours(conn: AsyncConnection, module: str, oid: str, ours: tuple[str, str] | None) -> Stored | None:
    if ours is not None:
        return await objects.get(conn, ObjectKey(module, OURS, ours[0], ours[1], oid))
    return await objects.find_any_owner(conn, module, oid, OURS)


def _owner(session: dict[str, Any]) -> tuple[str, str]:
    token = session["cdr_token"]
    return ci_key(token["country_code"]), ci_key(token["party_id"])


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


async def receive_command(callbacks: Callbacks, who: Caller, command_type: CommandType, command: OcpiModel,
                          hook: Hook | None) -> Decision:
    """The CPO's answer to a command (mod_commands, Receiver POST).

    Raises OcpiError (2001) for a request that is invalid against our data;
    such a request is not recorded. Everything else is.
    """
    engine = callbacks.engine
    pre: Decision | None = None
    ref: str | None = None
    location = session = None
    if command_type in _AT_LOCATION:
        ref = command.location_id  # type: ignore[attr-defined]
        async with engine.connect() as conn:
            stored = await _find_ours(conn, "locations", ref, who.ours)
        if stored is None:
            # The spec's sequence diagram: status_code 2003 with CommandResponse REJECTED.
            msg = f"unknown location {ref!r}"
            pre = Decision(_command_response(CommandResponseType.REJECTED, msg), StatusCode.UNKNOWN_LOCATION, msg)
        else:
            doc = json.loads(stored.data)
            pre = _check_location(command_type, command, doc)
            location = Location.from_wire(stored.data)
        token = getattr(command, "token", None)
        # Not a validity check (the CPO must not check the token): an eMSP may
        # only use tokens it owns, so nobody charges on another's contract.
        if pre is None and token is not None and (ci_key(token.country_code), ci_key(token.party_id)) \
                not in who.requester:
            msg = f"token {token.country_code}/{token.party_id}/{token.uid} is not one of yours"
            pre = Decision(_command_response(CommandResponseType.REJECTED, msg), status_message=msg)
    elif command_type == CommandType.STOP_SESSION:
        ref = command.session_id  # type: ignore[attr-defined]
        async with engine.connect() as conn:
            stored = await _find_ours(conn, "sessions", ref, who.ours)
        if stored is None:
            pre = Decision(_command_response(CommandResponseType.UNKNOWN_SESSION, f"unknown session {ref!r}"))
        elif _owner(json.loads(stored.data)) not in who.requester:
            pre = Decision(_command_response(CommandResponseType.REJECTED, "not your session"))
        else:
            session = Session.from_wire(stored.data)
    elif command_type == CommandType.CANCEL_RESERVATION:
        # Reservations live in the charge points: whether one is known is
        # their result (UNKNOWN_RESERVATION), there is no synchronous answer for it.
        ref = command.reservation_id  # type: ignore[attr-defined]
    if pre is None and hook is None:
        pre = Decision(_command_response(CommandResponseType.NOT_SUPPORTED, f"{command_type.value} is not supported"))

    def make_handle(uid: str) -> ResultHandle:
        return ResultHandle(callbacks, uid, COMMANDS, command_type.value, command.response_url,  # type: ignore[attr-defined]
                            who.party, who.routing, location=location, session=session)

    return await _decide(callbacks, who, COMMANDS, command_type.value, ref, command.response_url,  # type: ignore[attr-defined]
                         command.to_json_bytes().decode(), pre, hook, command, make_handle, CommandResponse,
                         CommandResponseType)


async def receive_profile_request(callbacks: Callbacks, who: Caller, request: ChargingProfileRequest,
                                  hook: Hook | None) -> Decision:
    """The CPO's answer to a ChargingProfiles GET, PUT or DELETE."""
    async with callbacks.engine.connect() as conn:
        stored = await _find_ours(conn, "sessions", request.session_id, who.ours)
    pre: Decision | None = None
    session = None

    def answer(result: ChargingProfileResponseType, msg: str | None = None) -> Decision:
        return Decision(ChargingProfileResponse(result=result, timeout=0), status_message=msg)

    if stored is None:
        pre = answer(ChargingProfileResponseType.UNKNOWN_SESSION, f"unknown session {request.session_id!r}")
    else:
        # Profiles are for the token owner's sessions. A party without that
        # ownership (an SCSP, or a Hub relaying one) needs a contract with
        # the CPO, which only the hook knows about; an eMSP is refused here.
        roles = {r.get("role") for r in who.party.roles or ()}
        if _owner(json.loads(stored.data)) not in who.requester and not roles & {Role.SCSP.value, Role.HUB.value}:
            pre = answer(ChargingProfileResponseType.REJECTED, "not your session")
        session = Session.from_wire(stored.data)
    if pre is None and hook is None:
        pre = answer(ChargingProfileResponseType.NOT_SUPPORTED, "charging profiles are not supported")
    if request.type == ProfileRequest.SET:
        body = SetChargingProfile(charging_profile=request.charging_profile,  # type: ignore[arg-type]
                                  response_url=request.response_url).to_json_bytes().decode()
    else:
        q: dict[str, Any] = {"response_url": request.response_url}
        if request.duration is not None:
            q["duration"] = request.duration
        body = json.dumps(q)

    def make_handle(uid: str) -> ResultHandle:
        return ResultHandle(callbacks, uid, CHARGING_PROFILES, request.type.value, request.response_url,
                            who.party, who.routing, session=session)

    return await _decide(callbacks, who, CHARGING_PROFILES, request.type.value, request.session_id,
                         request.response_url, body, pre, hook, request, make_handle, ChargingProfileResponse,
                         ChargingProfileResponseType)


async def _decide(callbacks: Callbacks, who: Caller, kind: str, type_: str, ref: str | None, response_url: str,
                  body: str, pre: Decision | None, hook: Hook | None, hook_arg: Any,
                  make_handle: Callable[[str], ResultHandle], response_model: type[OcpiModel],
                  response_type: type[StrEnum]) -> Decision:
    uid = new_uid()
    engine = callbacks.engine
    # Recorded before the hook runs (and committed), so a result the hook
    # reports at once finds its row.
    async with engine.begin() as conn:
        await repo.insert(conn, uid=uid, direction=IN, kind=kind, type_=type_, party_id=who.party.id, ref=ref,
                          response_url=response_url, request=body)
        if pre is not None:
            await repo.record_response(conn, uid, pre.response.result.value, pre.status_code,  # type: ignore[attr-defined]
                                       pre.response.timeout, pre.status_message)  # type: ignore[attr-defined]
    if pre is not None:
        return pre
    assert hook is not None
    handle = make_handle(uid)
    try:
        answer = await hook(hook_arg, handle)
        if isinstance(answer, response_type):
            answer = response_model(result=answer, timeout=DEFAULT_TIMEOUT_S)
        if not isinstance(answer, response_model):
            raise TypeError(f"the hook returned {answer!r}, not a {response_model.__name__}")
        decision = Decision(answer, handle=handle)
    except Exception:
        log.exception("commands.hook_failed", kind=kind, type=type_, id=uid)
        rejected = response_model(result=response_type("REJECTED"), timeout=0)
        decision = Decision(rejected, StatusCode.SERVER_ERROR, "the request could not be processed", handle)
    async with engine.begin() as conn:
        await repo.record_response(conn, uid, decision.response.result.value, decision.status_code,  # type: ignore[attr-defined]
                                   decision.response.timeout, decision.status_message)  # type: ignore[attr-defined]
    return decision


# --- eMSP / SCSP side: results of the requests we sent --------------------------------------


async def expect_tracked(engine: AsyncEngine, uid: str, kind: str, type_: str, party: Party) -> Tracked:
    """The request a result is posted for; 404 unless it is one we sent to
    this very partner, of this kind and type (ids are never guessable, but a
    result is accepted only from whom we asked)."""
    async with engine.connect() as conn:
        t = await repo.get(conn, uid)
    if t is None or t.direction != OUT or t.kind != kind or t.type != type_ or t.party_id != party.id:
        raise not_found(f"unknown {kind} request {type_}/{uid}")
    return t


async def store_result(engine: AsyncEngine, uid: str, result: OcpiModel) -> Tracked:
    async with engine.begin() as conn:
        await repo.expire(conn, uid)  # a result after the deadline finds TIMEOUT
        await repo.record_result(conn, uid, getattr(result, "result").value, result.to_json_bytes().decode())
        t = await repo.get(conn, uid)
    assert t is not None
    return t


async def tracked(engine: AsyncEngine, uid: str) -> Tracked | None:
    """A request's state, with the timeout applied (the lazy check)."""
    async with engine.connect() as conn:
        t = await repo.get(conn, uid)
    if t is not None and t.state == ACCEPTED and t.deadline_at is not None:
        async with engine.begin() as conn:
            if await repo.expire(conn, uid):
                t = await repo.get(conn, uid)
    return t


async def expire_overdue(engine: AsyncEngine) -> int:
    """Every overdue ACCEPTED request becomes TIMEOUT; for a periodic sweep."""
    async with engine.begin() as conn:
        return await repo.expire(conn)


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
