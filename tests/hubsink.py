"""A lightweight OCPI platform for the Hub tests: it registers with a Hub by
the normal handshake (token A, its versions and details, credentials POST),
records every request the Hub sends it, and answers each with an envelope
that names the party, so a test sees exactly what reached whom and what
came back.

Unlike a full node it judges nothing: what it shows is the Hub's routing
alone (headers, path, body), not a receiver's rules about a Hub's pushes.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from evroam.module import REGISTRY
from evroam.node import Node
from evroam.ocpi import headers as H
from tests.nodes import bind_loopback

V = "2.2.1"
T = "2026-01-01T00:00:00Z"


@dataclass
class Seen:
    """One request the sink received."""

    method: str
    path: str  # after /ocpi/2.2.1/, e.g. "receiver/sessions/NL/CPO/S1"
    query: str
    headers: dict[str, str]  # names lower-cased
    body: bytes


@dataclass
class Sink:
    name: str
    roles: list[tuple[str, str, str]]  # (role, country_code, party_id)
    token_in: str = field(default_factory=lambda: secrets.token_hex(16))  # the Hub calls us with it
    token_hub: str = ""  # we call the Hub with it (token C)
    hub_endpoints: dict[tuple[str, str], str] = field(default_factory=dict)  # (module, SENDER|RECEIVER) -> url
    seen: list[Seen] = field(default_factory=list)
    base: str = ""
    _runner: web.AppRunner | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.roles[0][1], self.roles[0][2]

    def envelope(self, path: str) -> dict:
        """What the sink answers to `path`: its own name in the message, the path in the data."""
        return {"status_code": 1000, "status_message": f"answered by {'/'.join(self.key)}",
                "timestamp": T, "data": {"path": path}}

    def functional(self, module: str | None = None) -> list[Seen]:
        """The functional requests received (not versions, credentials, hubclientinfo)."""
        out = [s for s in self.seen if s.path.startswith(("sender/", "receiver/"))
               and s.path.split("/")[1] not in ("hubclientinfo",)]
        return [s for s in out if module is None or s.path.split("/")[1] == module]

    def hub_url(self, module: str, iface: str, *path: str) -> str:
        return "/".join([self.hub_endpoints[(module, iface)].rstrip("/"), *path])

    async def start(self) -> Sink:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = bind_loopback()
        self.base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        await web.SockSite(self._runner, sock).start()
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _endpoints(self) -> list[dict]:
        out = [{"identifier": "credentials", "role": "SENDER", "url": f"{self.base}/ocpi/{V}/credentials"}]
        for role, _, _ in self.roles:
            for module_id, m in REGISTRY.items():
                iface = m.interfaces.get(role)
                if iface is not None and not any(e["identifier"] == module_id for e in out):
                    out.append({"identifier": module_id, "role": iface.value,
                                "url": f"{self.base}/ocpi/{V}/{iface.value.lower()}/{module_id}"})
        return out

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.path
        if path == "/versions":
            data = [{"version": V, "url": f"{self.base}/versions/{V}"}]
        elif path == f"/versions/{V}":
            data = {"version": V, "endpoints": self._endpoints()}
        else:
            tail = path.removeprefix(f"/ocpi/{V}/")
            self.seen.append(Seen(request.method, tail, request.query_string,
                                  {k.lower(): v for k, v in request.headers.items()}, await request.read()))
            return web.json_response(self.envelope(tail))
        return web.json_response({"status_code": 1000, "timestamp": T, "data": data})

    async def register(self, hub: Node) -> None:
        """The handshake with the Hub, as `evroam partners register` would run it."""
        token_a, versions_url = await hub.handshake.invite(self.name)
        async with aiohttp.ClientSession(headers={"Authorization": H.encode_token(token_a)}) as s:
            versions = (await _get(s, versions_url))["data"]
            url = next(v["url"] for v in versions if v["version"] == V)
            details = (await _get(s, url))["data"]
            self.hub_endpoints = {(e["identifier"], e["role"]): e["url"] for e in details["endpoints"]}
            creds = {"token": self.token_in, "url": f"{self.base}/versions", "roles": [
                {"role": role, "country_code": cc, "party_id": pid, "business_details": {"name": self.name}}
                for role, cc, pid in self.roles]}
            async with s.post(self.hub_endpoints[("credentials", "SENDER")], json=creds) as resp:
                answer = await resp.json(content_type=None)
        assert answer["status_code"] == 1000, answer
        self.token_hub = answer["data"]["token"]
        self.seen.clear()


async def _get(s: aiohttp.ClientSession, url: str) -> dict:
    async with s.get(url) as resp:
        return json.loads(await resp.read())


async def sinks_at(hub: Node, parties: dict[str, list[tuple[str, str, str]]]) -> dict[str, Sink]:
    """Start one sink per party and register each with the Hub."""
    out = {}
    for name, roles in parties.items():
        sink = await Sink(name, roles).start()
        out[name] = sink
        await sink.register(hub)
    return out
