"""The Sender's GET one object, answered before FastAPI's routing.

Partners poll these URLs far more than any other, so the plain case (a
registered partner's token, well-formed routing headers, an object that
exists) is answered here in plain ASGI: one statement reads the token, its
partner and the stored document (store/reader.py), and the document goes
out inside the envelope as the bytes it was stored as. Everything else (no
or unknown token, token A, bad routing headers, an unknown object, a busy
database) falls through to the module's ordinary route, which gives the
same answer it always did; so this path decides nothing the ordinary one
does not.

What does not change between requests is computed once: the token hashes
of an Authorization value, and the routing headers of a partner's roles
(keyed by the roles as stored, so a changed registration is seen at once).
Whether the token is still valid is never cached.

It sits inside OcpiMiddleware, which adds the request ids and the routing
headers noted here, and logs the call.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from types import SimpleNamespace

from evroam.ocpi.headers import Routing, parse_routing
from evroam.module import Module
from evroam.ocpi.types import ci_key, format_datetime
from evroam.server import routing
from evroam.server.context import ServerContext
from evroam.store import parties as repo
from evroam.store.reader import TokenHashes, TokenRow, honoured, reader_for

_ROUTING_NAMES = frozenset(n.encode() for n in ("ocpi-from-country-code", "ocpi-from-party-id",
                                                 "ocpi-to-country-code", "ocpi-to-party-id"))
_CACHE_MAX = 4096


class FastSender:
    def __init__(self, app, ctx: ServerContext, get_one: dict[str, Module]) -> None:
        self.app = app
        self.ctx = ctx
        # "/ocpi/2.2.1/sender/<module>/" -> the module whose GET one it serves.
        self.get_one = {prefix.rstrip("/") + "/": module for prefix, module in get_one.items()}
        self.reader = reader_for(ctx.engine.url) if get_one else None
        ctx.closers.append(self.close)
        self._hashes = TokenHashes()
        self._routing: dict[tuple, tuple[Routing, list[tuple[bytes, bytes]]] | None] = {}

    async def close(self) -> None:
        if self.reader is not None:
            await self.reader.close()

    async def __call__(self, scope, receive, send) -> None:
        if self.reader is not None and scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            cut = path.rfind("/") + 1
            module = self.get_one.get(path[:cut])
            if module is not None and cut < len(path) and await self._answer(scope, send, module, path[cut:]):
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope, send, module: Module, object_id: str) -> bool:
        # As Starlette's Headers.get: the first of a repeated header counts.
        auth, routing_values = None, {}
        for name, value in scope["headers"]:
            name = name.lower()
            if name == b"authorization":
                auth = value if auth is None else auth
            elif name in _ROUTING_NAMES:
                routing_values.setdefault(name, value)
        candidates = self._hashes.of(auth)
        if not candidates:
            return False
        hashes = list(candidates)
        rows = await self.reader.token_and_object(module.id, ci_key(object_id), (hashes[0], hashes[-1]))
        row = honoured(rows, candidates) if rows else None
        if row is None or row.data is None or row.kind == repo.TOKEN_A or row.party_status != repo.REGISTERED:
            return False
        noted = self._routing_of(row, module, scope["path"], routing_values)
        if noted is None:
            return False
        body = b'{"data":%b,"status_code":1000,"timestamp":"%b"}' % (row.data.encode(), _timestamp())
        state = scope.setdefault("state", {})
        state.update(party_id=row.party_id, party_name=row.party_name, routing=noted[0], routing_raw=noted[1],
                     ocpi_status=1000)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"%d" % len(body)), (b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
        return True

    def _routing_of(self, row: TokenRow, module: Module, path: str,
                    values: dict[bytes, bytes]) -> tuple[Routing, list[tuple[bytes, bytes]]] | None:
        """The routing of this answer, as routing.note finds it; None when
        the request's routing headers are refused (the ordinary path says why)."""
        key = (row.party_id, row.roles, path[:path.rfind("/")], tuple(values.items()))
        if key in self._routing:
            return self._routing[key]
        noted = None
        try:
            req = parse_routing({n.decode("latin-1"): v.decode("latin-1") for n, v in values.items()})
        except ValueError:
            req = None
        where = routing.interface_of(path)
        if req is not None and where is not None:
            party = SimpleNamespace(roles=json.loads(row.roles) if row.roles else None)
            ours = routing.receiving_party(self.ctx, req.to_key, *where)
            theirs = routing.requesting_party(party, req.from_key, *where)  # type: ignore[arg-type]
            if ours is not None:
                found = Routing(ours[0], ours[1], *(theirs or (None, None)))
                noted = (found, routing.header_bytes(found))
        _bounded(self._routing)[key] = noted
        return noted


_last_timestamp: list = [0, b""]


def _timestamp() -> bytes:
    """Now as envelope_bytes writes it (to the millisecond), formatted once
    per millisecond."""
    ms = time.time_ns() // 1_000_000
    if ms != _last_timestamp[0]:
        now = datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=ms % 1000 * 1000)
        _last_timestamp[:] = ms, format_datetime(now).encode()
    return _last_timestamp[1]


def _bounded(cache: dict) -> dict:
    if len(cache) >= _CACHE_MAX:
        cache.clear()  # only headers nobody sends twice get here
    return cache
