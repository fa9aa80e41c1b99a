"""The result tracker of the asynchronous modules (Commands, ChargingProfiles):
a request is answered at once and its result follows later at a
response_url. What those modules share is here; each hands in its module id
(`kind`) and finds how it answers (`Answers`) in its registry description,
so nothing here names one.

CPO (Receiver): the module's receiver first checks what the protocol itself
can check, then `decide` records the request, asks the business hook and
records the synchronous answer. The hook reports the charge point's result
later through its `ResultHandle`, which POSTs it to the response_url in the
background, and only once the ACCEPTED answer has been sent. `Callbacks`
keeps those tasks, so stopping the node ends them cleanly.

eMSP/SCSP (Sender): every request we send has its own response_url ending in
a unique id, recorded as PENDING (`track_and_send`). `expect_tracked` matches
a result to its request by that id alone, so any number can be in flight at
once, and `store_result` records it.

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
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import structlog
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from starlette.background import BackgroundTask
from starlette.responses import Response

from evroam.client.ocpi import OcpiClient, OcpiResult, PartnerError, UnusableReply
from evroam.module import REGISTRY
from evroam.ocpi.base import OcpiModel
from evroam.ocpi.chargingprofiles import ActiveChargingProfile
from evroam.ocpi.common import DisplayText, Role
from evroam.ocpi.headers import Routing, RoutingRequest
from evroam.ocpi.locations import Location
from evroam.ocpi.pagination import join_url
from evroam.ocpi.sessions import Session
from evroam.ocpi.status import StatusCode, not_found
from evroam.ocpi.types import ci_key
from evroam.ocpi.versions import InterfaceRole
from evroam.server import routing
from evroam.server.objects import ctx_of
from evroam.server.responses import ocpi_response
from evroam.server.routing import honoured_from, is_hub, requesting_party
from evroam.store import objects
from evroam.store import parties as party_repo
from evroam.store import tracking as repo
from evroam.store.objects import ObjectKey, Stored
from evroam.store.parties import Party
from evroam.store.tables import OURS
from evroam.store.tracking import ACCEPTED, IN, OUT, Tracked

log = structlog.get_logger(__name__)

# A hook that answers with a bare response type gets this timeout.
DEFAULT_TIMEOUT_S = 60
# How long a result reported before the answer went out waits for it.
RELEASE_WAIT_S = 60.0
V = "2.2.1"


class CommandStateError(RuntimeError):
    """A result where the protocol allows none (the answer was not ACCEPTED)."""


class SendError(ValueError):
    """A request we cannot send to that partner (not registered, no endpoint)."""


class InvalidRequest(SendError):
    """A request body or parameter that is not valid OCPI."""


def new_uid() -> str:
    return uuid.uuid4().hex


# How a result reaches a partner's response_url: (party, url, body, routing) ->
# None once the partner took it, else the error text. Passed in (the node makes
# it with `result_poster`): an app built without a node has no outbound client.
PostResult = Callable[[Party, str, bytes, Routing | None], Awaitable[str | None]]
# What a hook reports, (type, result, message, profile), as the body to post.
ResultBody = Callable[[str, Any, "list[DisplayText] | None", "ActiveChargingProfile | None"], OcpiModel]
Hook = Callable[[Any, "ResultHandle"], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Answers:
    """How an asynchronous module answers (its description's `answers`): the
    synchronous response, its result enum, and the body of a result."""

    response: type[OcpiModel]
    response_type: type[StrEnum]
    result_body: ResultBody


def answers_of(kind: str) -> Answers:
    answers = REGISTRY[kind].answers
    if not isinstance(answers, Answers):
        raise KeyError(f"{kind!r} is not an asynchronous module")
    return answers


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
        body = answers_of(self.kind).result_body(self.type, result, message, profile)
        if self._released.is_set() and self._response != ACCEPTED:
            raise CommandStateError(f"{self.kind} {self.type} {self.id} was answered {self._response}: "
                                    "a result only follows ACCEPTED")
        if self.callbacks.post_result is None:
            raise RuntimeError("this node has no outbound client (start() it first)")
        return self.callbacks.spawn(self._deliver(body), name=f"{self.kind}-result-{self.id}")

    async def _deliver(self, body: OcpiModel) -> bool:
        try:
            await asyncio.wait_for(self._released.wait(), RELEASE_WAIT_S)
        except TimeoutError:
            log.warning(f"{self.kind}.result_dropped", id=self.id, reason="the answer was never sent")
            return False
        if self._response != ACCEPTED:
            # Reported from inside the hook, which then did not accept.
            log.warning(f"{self.kind}.result_dropped", id=self.id, response=self._response)
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
            await repo.record_result(conn, self.id, body.result.value, data.decode(),
                                     delivery_error=error)
        if error:
            log.warning(f"{self.kind}.result_not_delivered", id=self.id, url=self.response_url, error=error)
        return error is None


def result_poster(client: OcpiClient) -> PostResult:
    """The POST of a result to the partner's response_url, for
    `Callbacks(post_result=...)`."""

    async def post_result(party: Party, url: str, body: bytes, routing: Routing | None) -> str | None:
        try:
            res = await client.request("POST", url, party.token_out, content=body, party_id=party.id, partner=party.name,
                                       raw_token=party.allow_raw_token, routing=routing)
        except PartnerError as exc:
            return exc.message
        if res.ok():
            return None
        return f"HTTP {res.http_status}, OCPI {res.status_code} {res.envelope.status_message or ''}".rstrip()

    return post_result


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
    """The synchronous answer (the module's response model)."""

    response: OcpiModel
    status_code: int = StatusCode.SUCCESS
    status_message: str | None = None
    handle: ResultHandle | None = None


@dataclass(slots=True)
class Received:
    """A request to one of our Receivers, checked and ready to be recorded."""

    kind: str  # the module id
    type: str  # the request within the module
    ref: str | None  # what it is about: a location, session or reservation id
    response_url: str
    recorded: str  # the request as we keep it (JSON)
    hook_arg: Any  # what the hook is given, with the handle
    location: Location | None = None  # for the handle
    session: Session | None = None


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


async def find_ours(conn: AsyncConnection, module: str, oid: str, ours: tuple[str, str] | None) -> Stored | None:
    """One of our own objects, under the addressed role when one was named."""
    if ours is not None:
        return await objects.get(conn, ObjectKey(module, OURS, ours[0], ours[1], oid))
    return await objects.find_any_owner(conn, module, oid, OURS)


def session_owner(session: dict[str, Any]) -> tuple[str, str]:
    """The party a stored Session belongs to: its token's eMSP."""
    token = session["cdr_token"]
    return ci_key(token["country_code"]), ci_key(token["party_id"])


async def decide(callbacks: Callbacks, who: Caller, req: Received, pre: Decision | None,
                 hook: Hook | None) -> Decision:
    """Record a received request and answer it: with `pre` when the checks
    before the hook decided already, else with what the hook answers."""
    uid = new_uid()
    # Recorded before the hook runs (and committed), so a result the hook
    # reports at once finds its row.
    async with callbacks.engine.begin() as conn:
        await repo.insert(conn, uid=uid, direction=IN, kind=req.kind, type_=req.type, party_id=who.party.id,
                          ref=req.ref, response_url=req.response_url, request=req.recorded)
        if pre is not None:
            await _record_decision(conn, uid, pre)
    if pre is not None:
        return pre
    assert hook is not None
    handle = ResultHandle(callbacks, uid, req.kind, req.type, req.response_url, who.party, who.routing,
                          location=req.location, session=req.session)
    decision = await _ask(hook, req, handle)
    async with callbacks.engine.begin() as conn:
        await _record_decision(conn, uid, decision)
    return decision


async def _ask(hook: Hook, req: Received, handle: ResultHandle) -> Decision:
    answers = answers_of(req.kind)
    try:
        answer = await hook(req.hook_arg, handle)
        if isinstance(answer, answers.response_type):
            answer = answers.response(result=answer, timeout=DEFAULT_TIMEOUT_S)
        if not isinstance(answer, answers.response):
            raise TypeError(f"the hook returned {answer!r}, not a {answers.response.__name__}")
        return Decision(answer, handle=handle)
    except Exception:
        log.exception(f"{req.kind}.hook_failed", kind=req.kind, type=req.type, id=handle.id)
        rejected = answers.response(result=answers.response_type("REJECTED"), timeout=0)
        return Decision(rejected, StatusCode.SERVER_ERROR, "the request could not be processed", handle)


async def _record_decision(conn: AsyncConnection, uid: str, decision: Decision) -> None:
    response: Any = decision.response
    await repo.record_response(conn, uid, response.result.value, decision.status_code, response.timeout,
                               decision.status_message)


def callbacks_of(request: Request) -> Callbacks:
    callbacks = getattr(request.app.state, "callbacks", None)
    if callbacks is None:  # an app built without a node: results cannot be posted
        callbacks = request.app.state.callbacks = Callbacks(ctx_of(request).engine)
    return callbacks


def caller_of(request: Request, party: Party, module: str) -> Caller:
    return caller(party, routing.claimed(request), ctx_of(request).our_keys(Role.CPO), module)


def answer(request: Request, decision: Decision) -> Response:
    """The synchronous answer; results reported meanwhile are let go only
    after it has been sent (a result never overtakes its ACCEPTED)."""
    request.state.ocpi_status = decision.status_code
    response = ocpi_response(data_json=decision.response.to_json_bytes(), status_code=decision.status_code,
                             status_message=decision.status_message)
    if decision.handle is not None:
        response.background = BackgroundTask(decision.handle.release,
                                             decision.response.result.value)  # type: ignore[attr-defined]
    return response


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
        await repo.record_result(conn, uid, result.result.value, result.to_json_bytes().decode())
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


# --- eMSP / SCSP side: sending a request ----------------------------------------------------


class OurRole(Protocol):
    role: Role
    country_code: str
    party_id: str


@dataclass(slots=True)
class Outgoing:
    """A request we send, as we record it and make it."""

    uid: str  # the unique id that ends its response_url
    kind: str  # the module id
    type: str
    ref: str | None
    response_url: str
    recorded: str  # the request as we keep it (JSON)
    method: str
    url: str
    content: bytes | None = None
    params: dict[str, str] | None = None


def response_url(public_url: str, kind: str, type_: str, uid: str) -> str:
    """Where the partner posts the result: our Sender interface of `kind`."""
    url = join_url(public_url, "ocpi", V, "sender", kind, type_, uid)
    if len(url) > 255:
        raise SendError(f"response_url would exceed 255 characters: {url}")
    return url


def receiver_endpoint(party: Party, kind: str) -> str:
    """The partner's Receiver interface of `kind`, if we may call it."""
    base = party.endpoint_url(kind, "RECEIVER")
    if party.status != party_repo.REGISTERED or not base or not party.token_out:
        raise SendError(f"{party.name} has no {kind} receiver endpoint")
    return base


def _routing_to_cpo(roles: Sequence[OurRole], party: Party, to: tuple[str, str] | None = None) -> Routing | None:
    mine = [r for r in roles if r.role in (Role.EMSP, Role.SCSP)] or list(roles)
    if not mine:
        return None
    theirs = to or next(((r["country_code"], r["party_id"]) for r in party.roles or () if r.get("role") == "CPO"),
                        None)
    return routing_for((mine[0].country_code.upper(), mine[0].party_id.upper()), theirs, party)


async def track_and_send(engine: AsyncEngine, client: OcpiClient, party: Party, out: Outgoing,
                         roles: Sequence[OurRole], to: tuple[str, str] | None = None) -> None:
    """Record the request, send it from our first eMSP/SCSP role, and record
    the CPO's synchronous answer (or why there is none). `to`: the CPO it is
    for, when `party` is a Hub (OCPI-to); else the partner's CPO role."""
    # Stored (and committed) before the call: a CPO may post the result
    # before its answer reaches us.
    async with engine.begin() as conn:
        await repo.insert(conn, uid=out.uid, direction=OUT, kind=out.kind, type_=out.type, party_id=party.id,
                          ref=out.ref, response_url=out.response_url, request=out.recorded)
    try:
        res = await client.request(out.method, out.url, party.token_out, content=out.content, params=out.params,
                                   party_id=party.id, partner=party.name, raw_token=party.allow_raw_token,
                                   routing=_routing_to_cpo(roles, party, to))
    except PartnerError as exc:
        async with engine.begin() as conn:
            await repo.record_error(conn, out.uid, exc.message)
        return
    await _record_answer(engine, out, res)


async def _record_answer(engine: AsyncEngine, out: Outgoing, res: OcpiResult) -> None:
    response: Any = None
    problem = ""
    try:
        response = res.one(answers_of(out.kind).response)
    except UnusableReply as exc:
        if 200 <= res.http_status < 300:
            # A success status with no usable answer: say what was wrong with it.
            problem = f", but the answer is unusable: {exc}"
    note = f"OCPI {res.status_code} {res.envelope.status_message or ''}".rstrip()
    async with engine.begin() as conn:
        if response is not None and 200 <= res.http_status < 300:
            # With 2003 the answer still carries a REJECTED response (the spec's diagram).
            texts = [t.text for t in getattr(response, "message", None) or ()]
            message = "; ".join(([note] if res.status_code != StatusCode.SUCCESS else []) + texts) or None
            await repo.record_response(conn, out.uid, response.result.value, res.status_code, response.timeout,
                                       message)
        else:
            await repo.record_error(conn, out.uid, f"HTTP {res.http_status}, {note}{problem}", res.status_code)
