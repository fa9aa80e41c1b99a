"""The Hub's layer in front of the module routers (docs/hub.md).

A HUB node serves no module of its own but HubClientInfo. Every request to a
functional module's interface (`/ocpi/2.2.1/{sender|receiver}/{module}/…`)
is taken here, before FastAPI's routing:

- authenticated by the caller's token, and its OCPI-from checked against the
  caller's own registered roles (a platform speaks only for itself);
- TO = another party: forwarded to that party (hub/forward.py);
- TO = the Hub: a Broadcast Push (POST, PUT, PATCH to a Receiver) or a GET
  All (GET of a Sender list);
- no TO: an Open Routing Request, routed by the content (Module.route).

And one path of its own: `/ocpi/{version}/hub/callback/…`, where a receiver
calls back a URL the Hub rewrote (a command's response_url, hub/rewrite.py).

Hub errors (4000–4003) carry FROM = the Hub and TO = the caller.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from starlette.datastructures import Headers

from evroam.module import REGISTRY, Module
from evroam.ocpi.headers import Routing, RoutingRequest, parse_authorization, parse_routing
from evroam.ocpi.hubclientinfo import ConnectionStatus
from evroam.ocpi.status import StatusCode
from evroam.ocpi.types import ci_key
from evroam.ocpi.versions import InterfaceRole
from evroam.hub.directory import DirectoryCache, HubParty, Key
from evroam.server.responses import ocpi_response
from evroam.store import parties as party_repo
from evroam.store.parties import Party
from evroam.store.reader import TokenHashes, honoured, reader_for

log = structlog.get_logger(__name__)

_PATH = re.compile(r"^/ocpi/([^/]+)/(sender|receiver)/([a-z]+)(/.*)?$")
# version, requester cc and pid, the original URL (hub/rewrite.py)
_CALLBACK = re.compile(r"^/ocpi/([^/]+)/hub/callback/([^/]+)/([^/]+)/([^/]+)$")
PUSH_METHODS = frozenset({"POST", "PUT", "PATCH"})

# HTTP statuses of the hub's own errors; the spec gives only the OCPI codes.
HTTP_OF = {StatusCode.HUB_ERROR: 502, StatusCode.HUB_UNKNOWN_RECEIVER: 404,
           StatusCode.HUB_TIMEOUT: 504, StatusCode.HUB_CONNECTION_PROBLEM: 502}


class HubRefusal(Exception):
    """An answer of the Hub itself (a hub error, or the caller's mistake)."""

    def __init__(self, status_code: int, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.status_code = int(status_code)
        self.message = message
        self.http_status = http_status or HTTP_OF.get(StatusCode(status_code), 400)


@dataclass(slots=True)
class Routed:
    """One functional request taken by the Hub, authenticated and checked."""

    scope: dict[str, Any]
    version: str
    module: Module | None  # None on a callback
    iface: InterfaceRole | None  # None on a callback
    rest: str  # the path after the module, "" or "/…"; on a callback, the encoded URL
    query: str
    method: str
    headers: Headers
    caller: Party  # the calling platform
    sender: Key  # its role that sends (OCPI-from, checked)
    to: Key | None  # OCPI-to, None for an Open Routing Request
    body: bytes = b""
    correlation_id: str = ""

    @property
    def segments(self) -> list[str]:
        return [s for s in self.rest.split("/") if s]


@dataclass(slots=True)
class Answer:
    """What the Hub sends back for one request."""

    http_status: int
    body: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


Handler = Callable[["Hub", Routed], Awaitable[Answer]]


class Callers:
    """Who is calling, by token, on every request the Hub routes.

    The token is judged against the database each time (a token rotated or
    removed by any process sharing it is refused at once), by the one point
    read of the Sender's hot path (store/reader.py), below SQLAlchemy; the
    caller's partner row is read again only when its `updated_at` moved.
    Where there is no such reader (an in-memory database) or the database is
    busy, the ordinary path answers."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.reader = reader_for(engine.url)
        self.hashes = TokenHashes()
        self._parties: dict[int, tuple[object, Party]] = {}

    async def find(self, authorization: str | None) -> tuple[Party, str] | None:
        """The calling platform and the kind of token it presented, or None."""
        candidates = self.hashes.of(authorization.encode("latin-1") if authorization is not None else None)
        if not candidates:
            return None
        hashes = list(candidates)
        rows = await self.reader.token_and_object("", "", (hashes[0], hashes[-1])) if self.reader else None
        if rows is None:
            decoded, raw = parse_authorization(authorization)
            async with self.engine.connect() as conn:
                auth = await party_repo.authenticate(conn, decoded, raw)
            return (auth.party, auth.token_kind) if auth is not None else None
        row = honoured(rows, candidates)
        if row is None:
            return None
        cached = self._parties.get(row.party_id)
        if cached is None or cached[0] != row.party_updated:
            async with self.engine.connect() as conn:
                party = await party_repo.get(conn, row.party_id)
            if party is None:
                return None
            if len(self._parties) >= 4096:
                self._parties.clear()
            cached = self._parties[row.party_id] = (row.party_updated, party)
        return cached[1], row.kind

    async def close(self) -> None:
        if self.reader is not None:
            await self.reader.close()


@dataclass(slots=True)
class Hub:
    """What the layer needs: the node's engine, our own key, and how to reach
    parties. The handlers of each kind of request are set by their modules
    of this package (forward, broadcast, getall, openrouting)."""

    engine: Any
    key: Key  # the Hub's own country_code/party_id, as configured
    public_url: str
    directory: DirectoryCache
    session: Callable[[], Any]  # the node's shared aiohttp session (created on start)
    call_log: Any = None
    forward_timeout_s: float = 10.0
    node: Any = None  # NodeServices, for the handlers that publish or deliver
    forward: Handler | None = None
    broadcast: Handler | None = None
    get_all: Handler | None = None
    open_route: Handler | None = None
    callback: Handler | None = None
    # Called after each forward with (hub, routed, TO, the receiver's HTTP
    # status): what the Hub learns from the traffic it routes (openrouting.Learner).
    after_forward: list[Callable[..., Awaitable[None]]] = field(default_factory=list)
    # registration id -> monotonic time of its last request seen here (liveness).
    last_seen: dict[int, float] = field(default_factory=dict)
    callers: Callers | None = None

    async def close(self) -> None:
        if self.callers is not None:
            await self.callers.close()

    def seen(self, registration_id: int) -> None:
        self.last_seen[registration_id] = time.monotonic()

    def endpoint_url(self, version: str, module: str, iface: InterfaceRole) -> str:
        return f"{self.public_url.rstrip('/')}/ocpi/{version}/{iface.value.lower()}/{module}"

    def routing_answer(self, to: Key | None, frm: Key | None = None) -> list[tuple[bytes, bytes]]:
        frm = frm or self.key
        return [(k.lower().encode("latin-1"), v.encode("latin-1"))
                for k, v in Routing(frm[0], frm[1], *(to or (None, None))).headers().items()]

    def refusal_answer(self, exc: HubRefusal, to: Key | None) -> Answer:
        resp = ocpi_response(status_code=exc.status_code, status_message=exc.message, http_status=exc.http_status)
        return Answer(exc.http_status, bytes(resp.body), [(b"content-type", b"application/json"),
                                                         *self.routing_answer(to)])


def routed_module(module_id: str) -> Module | None:
    """A functional module the Hub routes (not the configuration modules)."""
    m = REGISTRY.get(module_id)
    return m if m is not None and m.interfaces and m.routed else None


class HubLayer:
    """ASGI middleware: the Hub's functional requests never reach FastAPI."""

    def __init__(self, app, hub: Hub) -> None:
        self.app = app
        self.hub = hub

    async def __call__(self, scope, receive, send) -> None:
        m = _PATH.match(scope["path"]) if scope["type"] == "http" else None
        module = routed_module(m.group(3)) if m else None
        back = _CALLBACK.match(scope["path"]) if m is None and scope["type"] == "http" else None
        if module is None and (back is None or self.hub.callback is None):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        try:
            if back is not None:
                routed = await self._called_back(scope, headers, back)
            else:
                routed = await self._routed(scope, headers, m.group(1), module, InterfaceRole(m.group(2).upper()),
                                            m.group(4) or "")
        except HubRefusal as exc:
            await _send(send, self.hub.refusal_answer(exc, _claimed_from(headers)))
            return
        routed.body = await _body(receive)
        routed.correlation_id = scope.get("state", {}).get("correlation_id", "")
        try:
            answer = await (self._dispatch(routed) if back is None else self.hub.callback(self.hub, routed))
        except HubRefusal as exc:
            answer = self.hub.refusal_answer(exc, routed.sender)
        except Exception as exc:  # a bug of ours must still answer in OCPI, as the Hub
            log.exception("hub.failed", path=scope["path"], method=routed.method)
            answer = self.hub.refusal_answer(HubRefusal(StatusCode.HUB_ERROR, f"hub error: {type(exc).__name__}"),
                                             routed.sender)
        await _send(send, answer)

    async def _routed(self, scope, headers: Headers, version: str, module: Module, iface: InterfaceRole,
                      rest: str) -> Routed:
        caller, req = await self._caller(scope, headers)
        sender = own_role(caller, req.from_key)
        return Routed(scope, version, module, iface, rest, scope.get("query_string", b"").decode("latin-1"),
                      scope["method"], headers, caller, sender, req.to_key)

    async def _called_back(self, scope, headers: Headers, m: re.Match) -> Routed:
        """A call to a callback URL: TO is the requester its path names."""
        caller, req = await self._caller(scope, headers)
        if scope["method"] != "POST":
            raise HubRefusal(StatusCode.CLIENT_ERROR, "a callback URL of the Hub takes a POST only", 405)
        return Routed(scope, m.group(1), None, None, m.group(4), scope.get("query_string", b"").decode("latin-1"),
                      "POST", headers, caller, own_role(caller, req.from_key), (m.group(2), m.group(3)))

    async def _caller(self, scope, headers: Headers) -> tuple[Party, RoutingRequest]:
        """The calling platform, by its token, and its routing headers."""
        authorization = headers.get("authorization")
        decoded, raw = parse_authorization(authorization)
        if decoded is None and raw is None:
            raise HubRefusal(StatusCode.CLIENT_ERROR, "missing or malformed Authorization header "
                             "(expected `Token <base64 token>`)", 401)
        if self.hub.callers is None:
            self.hub.callers = Callers(self.hub.engine)
        found = await self.hub.callers.find(authorization)
        if found is None:
            raise HubRefusal(StatusCode.CLIENT_ERROR, "unknown credentials token", 401)
        party, kind = found
        if kind == party_repo.TOKEN_A or party.status != party_repo.REGISTERED:
            raise HubRefusal(StatusCode.CLIENT_ERROR,
                             "this token is only valid for registration (versions and credentials)", 401)
        state = scope.setdefault("state", {})
        state["party_id"] = party.id
        self.hub.seen(party.id)
        try:
            return party, parse_routing(headers)
        except ValueError as exc:
            raise HubRefusal(StatusCode.INVALID_PARAMETERS, str(exc), 400) from None

    async def _dispatch(self, r: Routed) -> Answer:
        hub = self.hub
        if r.to is None:
            handler = hub.open_route
        elif r.to == hub.key:
            if r.method == "GET" and r.iface == InterfaceRole.SENDER and not r.segments:
                handler = hub.get_all
            elif r.method in PUSH_METHODS and r.iface == InterfaceRole.RECEIVER and r.module.broadcast:
                handler = hub.broadcast
            else:
                raise HubRefusal(StatusCode.HUB_UNKNOWN_RECEIVER,
                                 f"the Hub holds no {r.module.id} of its own: {r.method} to the Hub is "
                                 "a Broadcast Push (POST, PUT or PATCH of Locations or Tokens) or a GET "
                                 "All of a Sender list; address the party in OCPI-to")
        else:
            handler = hub.forward
        if handler is None:
            raise HubRefusal(StatusCode.HUB_ERROR, "this Hub does not route such requests")
        return await handler(hub, r)


def own_role(caller: Party, claimed: Key | None) -> Key:
    """The caller's role that sends: the one OCPI-from names, which must be
    one of the caller's own registered roles; or its only role."""
    roles = [(ci_key(r["country_code"]), ci_key(r["party_id"])) for r in caller.roles or ()]
    if claimed is None:
        if len(roles) == 1:
            return roles[0]
        raise HubRefusal(StatusCode.INVALID_PARAMETERS, "OCPI-from-country-code and OCPI-from-party-id are "
                         "required: you registered several roles", 400)
    if claimed not in roles:
        raise HubRefusal(StatusCode.INVALID_PARAMETERS,
                         f"OCPI-from names {claimed[0]}/{claimed[1]}, which is not one of your registered roles "
                         f"({', '.join('/'.join(k) for k in roles) or 'none'})", 400)
    return claimed


def _claimed_from(headers: Headers) -> Key | None:
    try:
        return parse_routing(headers).from_key
    except ValueError:
        return None


async def _body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send(send, answer: Answer) -> None:
    headers = [h for h in answer.headers if h[0] != b"content-length"]
    headers.append((b"content-length", str(len(answer.body)).encode()))
    await send({"type": "http.response.start", "status": answer.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


def target_of(directory_party: HubParty | None, key: Key) -> HubParty:
    """The party a request is addressed to, or the hub error that says why not."""
    if directory_party is None:
        raise HubRefusal(StatusCode.HUB_UNKNOWN_RECEIVER, f"unknown receiver {key[0]}/{key[1]}: "
                         "no party with that country_code/party_id is connected to this Hub")
    if directory_party.status != ConnectionStatus.CONNECTED:
        raise HubRefusal(StatusCode.HUB_CONNECTION_PROBLEM,
                         f"receiver {key[0]}/{key[1]} is {directory_party.status.value}")
    return directory_party
