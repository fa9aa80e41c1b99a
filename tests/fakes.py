"""A scripted OCPI partner on real HTTP, for the cases a real evroam node
would never produce (no common version, missing endpoints)."""

from __future__ import annotations

import asyncio

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.nodes import bind_loopback


class FakePartner:
    def __init__(self, versions: list[str] | None = None, modules: list[str] | None = None) -> None:
        self.versions = versions if versions is not None else ["2.2.1"]
        self.modules = modules if modules is not None else ["credentials"]
        self.calls: list[tuple[str, str]] = []
        self.sock = bind_loopback()
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.versions_url = f"{self.base}/versions"
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task | None = None

    def _env(self, data):
        return JSONResponse({"data": data, "status_code": 1000, "timestamp": "2026-01-01T00:00:00Z"})

    async def _versions(self, request: Request):
        self.calls.append((request.method, request.url.path))
        return self._env([{"version": v, "url": f"{self.base}/{v}"} for v in self.versions])

    async def _details(self, request: Request):
        self.calls.append((request.method, request.url.path))
        v = request.path_params["v"]
        eps = [{"identifier": m, "role": "SENDER", "url": f"{self.base}/{v}/{m}"} for m in self.modules]
        return self._env({"version": v, "endpoints": eps})

    async def _credentials(self, request: Request):
        self.calls.append((request.method, request.url.path))
        return JSONResponse({"status_code": 3000, "status_message": "fake", "timestamp": "2026-01-01T00:00:00Z"})

    async def __aenter__(self) -> FakePartner:
        app = Starlette(routes=[
            Route("/versions", self._versions),
            Route("/{v}/credentials", self._credentials, methods=["GET", "POST", "PUT", "DELETE"]),
            Route("/{v}", self._details),
        ])
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._task = asyncio.create_task(self._server.serve(sockets=[self.sock]))
        while not self._server.started:
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.should_exit = True
        await self._task
