"""A scripted OCPI partner on real HTTP that has the quirks of the
independent implementation we test against (tests/interop): a `Link` header
that cannot be followed, an empty `link: ` on the last page, single objects
wrapped in a list, and errors without an OCPI envelope.

It registers like a real partner (it answers the credentials POST) and
records every request, so a test can check what evroam asked for.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from evroam.ocpi.headers import encode_token
from evroam.ocpi.types import format_datetime, parse_datetime
from tests import builders
from tests.nodes import bind_loopback, wait_for

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TOKEN_C = "quirky-token-c"
FORBIDDEN = {"detail": "Not authenticated"}

# How the location list's Link header misbehaves:
#   broken      the peer's own: https, Enum reprs in the path, date_from=None;
#               an empty `link: ` on the last page
#   failing     under our endpoint URL, but with date_from=None, which the
#               list itself answers with 422 {"detail": ...}
#   none        no Link at all; X-Total-Count is right
#   empty_last  a good Link, and an empty `link: ` on the last page
LINK_MODES = ("broken", "failing", "none", "empty_last")


def location(i: int, cc: str = "NL", pid: str = "XWC", updated: datetime = T0) -> dict:
    """Location number i of a long list."""
    stamp = format_datetime(updated)
    return builders.location(f"LOC{i:03d}", cc, pid, updated=stamp, evses=[builders.evse(f"E{i}", updated=stamp)],
                             address=f"Main {i}")


def envelope(data: Any = None, status_code: int = 1000, message: str | None = "Generic success code") -> dict:
    body: dict[str, Any] = {"status_code": status_code, "timestamp": "2026-01-01T00:00:00Z"}
    if data is not None:
        body["data"] = data
    if message is not None:
        body["status_message"] = message
    return body


class QuirkyPartner:
    def __init__(self, role: str = "CPO", cc: str = "NL", pid: str = "XWC", *,
                 modules: list[tuple[str, str]] | None = None, locations: int = 250, page: int = 50,
                 link: str = "broken") -> None:
        assert link in LINK_MODES, link
        self.role, self.cc, self.pid = role, cc, pid
        self.modules = modules if modules is not None else [("locations", "SENDER")]
        self.page, self.link = page, link
        self.locations = {f"LOC{i:03d}": location(i, cc, pid) for i in range(locations)}
        # X-Total-Count added to the true count (a partner whose pages run out early).
        self.total_excess = 0
        # Every page is the first: a partner that ignores `offset`.
        self.ignore_offset = False
        # Every module route answers 403 {"detail": ...}, as the peer does for a bad token.
        self.forbid = False
        # Scripted answers: name -> (HTTP status, JSON body, or a str sent as HTML).
        self.replies: dict[str, tuple[int, Any]] = {}
        # Objects pushed to its receivers, by path.
        self.held: dict[str, dict] = {}
        self.calls: list[tuple[str, str, dict[str, str]]] = []
        self.sock = bind_loopback()
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.versions_url = f"{self.base}/versions"
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task | None = None

    def url(self, module: str) -> str:
        return f"{self.base}/2.2.1/{module}"

    def list_calls(self) -> list[dict[str, str]]:
        """The query of each GET of the location list, in order."""
        return [q for m, p, q in self.calls if m == "GET" and p == "/2.2.1/locations"]

    def touch(self, ids: list[str], at: datetime) -> None:
        """The partner changes these locations (a later delta pull must bring them)."""
        for oid in ids:
            doc = self.locations.pop(oid)
            self.locations[oid] = {**doc, "address": doc["address"] + " (moved)", "last_updated": format_datetime(at)}

    # --- routes ------------------------------------------------------------------------------

    def _record(self, request: Request) -> None:
        self.calls.append((request.method, request.url.path, dict(request.query_params)))

    def _reply(self, name: str, default: Any) -> Response:
        status, body = self.replies.get(name, (200, default))
        if isinstance(body, str):  # a proxy's page, not JSON
            return Response(body, status_code=status, media_type="text/html")
        return JSONResponse(body, status_code=status)

    def _authorized(self, request: Request) -> bool:
        return not self.forbid and request.headers.get("authorization") == encode_token(TOKEN_C)

    async def _versions(self, request: Request) -> Response:
        self._record(request)
        if "versions" in self.replies:
            return self._reply("versions", None)
        return JSONResponse(envelope([{"version": "2.2.1", "url": f"{self.base}/2.2.1"}]))

    async def _details(self, request: Request) -> Response:
        self._record(request)
        eps = [{"identifier": "credentials", "role": "RECEIVER", "url": self.url("credentials")}]
        eps += [{"identifier": m, "role": r, "url": self.url(m)} for m, r in self.modules]
        return JSONResponse(envelope({"version": "2.2.1", "endpoints": eps}))

    async def _credentials(self, request: Request) -> Response:
        self._record(request)
        roles = [{"role": self.role, "country_code": self.cc, "party_id": self.pid,
                  "business_details": {"name": "quirky"}}]
        return JSONResponse(envelope({"token": TOKEN_C, "url": self.versions_url, "roles": roles}))

    async def _location_list(self, request: Request) -> Response:
        self._record(request)
        if not self._authorized(request):
            return JSONResponse(FORBIDDEN, status_code=403)
        q = request.query_params
        try:
            since = parse_datetime(q["date_from"]) if "date_from" in q else None
            offset, limit = int(q.get("offset", 0)), min(int(q.get("limit", self.page)), self.page)
        except ValueError:
            # FastAPI's answer to a query it cannot parse, no envelope.
            return JSONResponse({"detail": [{"loc": ["query", "date_from"], "msg": "invalid datetime format",
                                             "type": "value_error.datetime"}]}, status_code=422)
        if self.ignore_offset:
            offset = 0
        rows = [d for d in self.locations.values() if since is None or parse_datetime(d["last_updated"]) >= since]
        chunk = rows[offset:offset + limit]
        total = len(rows) + self.total_excess
        headers = {"X-Total-Count": str(total), "X-Limit": str(self.page)}
        if offset + limit < len(rows):
            headers.update(self._link(request, offset + limit, limit))
        elif self.link in ("broken", "empty_last"):
            headers["Link"] = ""  # the peer's "no next page"
        return Response(json.dumps(envelope(chunk)), headers=headers, media_type="application/json")

    def _link(self, request: Request, offset: int, limit: int) -> dict[str, str]:
        if self.link == "none":
            return {}
        if self.link == "broken":
            netloc = request.url.netloc
            query = urlencode({"date_from": "None", "date_to": "None", "offset": offset, "limit": limit})
            return {"Link": f'<https://{netloc}/VersionNumber.v_2_2_1/ModuleID.locations/?{query}>; rel="next"'}
        query = dict(request.query_params) | {"offset": str(offset), "limit": str(limit)}
        if self.link == "failing":
            query |= {"date_from": "None"}
        return {"Link": f'<{self.url("locations")}?{urlencode(query)}>; rel="next"'}

    async def _authorize(self, request: Request) -> Response:
        self._record(request)
        if not self._authorized(request):
            return JSONResponse(FORBIDDEN, status_code=403)
        return self._reply("authorize", envelope())

    async def _command(self, request: Request) -> Response:
        self._record(request)
        if not self._authorized(request):
            return JSONResponse(FORBIDDEN, status_code=403)
        return self._reply("commands", envelope([{"result": "ACCEPTED", "timeout": 30}]))

    async def _receiver(self, request: Request) -> Response:
        """Tariffs Receiver: PUT, and GET back, each answered `data: [obj]`."""
        self._record(request)
        if not self._authorized(request):
            return JSONResponse(FORBIDDEN, status_code=403)
        path = request.url.path
        if request.method == "PUT":
            self.held[path] = json.loads(await request.body())
            return self._reply("put", envelope([self.held[path]]))
        if path not in self.held:
            return JSONResponse({"detail": "Not found"}, status_code=404)
        return self._reply("get", envelope([self.held[path]]))

    async def __aenter__(self) -> QuirkyPartner:
        app = Starlette(routes=[
            Route("/versions", self._versions),
            Route("/2.2.1", self._details),
            Route("/2.2.1/credentials", self._credentials, methods=["POST", "PUT"]),
            Route("/2.2.1/locations", self._location_list),
            Route("/2.2.1/tokens/{uid}/authorize", self._authorize, methods=["POST"]),
            Route("/2.2.1/commands/{type}", self._command, methods=["POST"]),
            Route("/2.2.1/tariffs/{cc}/{pid}/{id}", self._receiver, methods=["GET", "PUT"]),
        ])
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._task = asyncio.create_task(self._server.serve(sockets=[self.sock]))
        await wait_for(lambda: self._server.started, what="the scripted partner to serve")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.should_exit = True
        await self._task


def later(seconds: float = 1.0) -> datetime:
    """A time after now, for a change the next delta pull must see."""
    return datetime.now(UTC) + timedelta(seconds=seconds)
